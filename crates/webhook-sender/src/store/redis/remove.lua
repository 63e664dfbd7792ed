-- Retention: removes finished deliveries, their index entries and their place in their
-- message's delivery list; a message goes with its last delivery, with its index entries.
-- A delivery whose status or finish time is no longer the one the entries were computed
-- from (redriven meanwhile) is skipped. Returns how many were removed.
-- ARGV: prefix, count, then per delivery: id, status, finish time ('' when none),
-- message key, the delivery's index block, its message's index block.
local n = tonumber(ARGV[2])
local i = 3
local removed = 0
for _ = 1, n do
  local id, st, fin, mk = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local d = key('d:' .. id)
  local own = i + 4
  local msg = block_end(own)
  local f = redis.call('HMGET', d, 'st', 'fin')
  if f[1] == st and (f[2] or '') == fin then
    redis.call('DEL', d)
    index_remove(own)
    local list = key('md:' .. mk)
    redis.call('LREM', list, 1, id)
    if redis.call('EXISTS', list) == 0 then
      redis.call('DEL', key('m:' .. mk))
      index_remove(msg)
    end
    removed = removed + 1
  end
  i = block_end(msg)
end
return removed
