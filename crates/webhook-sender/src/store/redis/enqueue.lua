-- Stores one message and its deliveries, atomically, unless the organization already has
-- a message with this event id: then nothing is stored and that message is returned as
-- { record, delivery ids, payload body }. Returns false when stored.
-- ARGV: prefix, message key ({event}:{org}), message record (payload content left out),
-- payload body (raw bytes), '1' when the payload has a domain (else ''), the domain,
-- message index block, then the delivery count and per delivery: id, record, endpoint,
-- resource key, due (ms), index block.
local mk = ARGV[2]
local m = key('m:' .. mk)
local existing = redis.call('HMGET', m, 'rec', 'body')
if existing[1] then
  return { existing[1], redis.call('LRANGE', key('md:' .. mk), 0, -1), existing[2] }
end
if ARGV[5] == '1' then
  redis.call('HSET', m, 'rec', ARGV[3], 'body', ARGV[4], 'dom', ARGV[6])
else
  redis.call('HSET', m, 'rec', ARGV[3], 'body', ARGV[4])
end
local i = index_add(7)
local n = tonumber(ARGV[i])
i = i + 1
local touched = {}
for _ = 1, n do
  local id, rec, ep, rk, due = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local seq = redis.call('INCR', key('seq'))
  redis.call('HSET', key('d:' .. id), 'rec', rec, 'mk', mk, 'ep', ep, 'rk', rk, 'seq', seq,
    'st', 'pending', 'due', due, 'lease', 0, 'round', 0, 'att', '[]')
  redis.call('RPUSH', key('md:' .. mk), id)
  if chain_push(ep, rk, id, due) then
    touched[ep] = true
  end
  i = index_add(i + 5)
end
for ep in pairs(touched) do
  refresh(ep)
end
if n > 0 then
  redis.call('INCRBY', key('open'), n)
end
return false
