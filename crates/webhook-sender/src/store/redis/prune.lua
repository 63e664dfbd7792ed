-- Forgets up to `limit` delivered deliveries finished before `before`.
-- ARGV: prefix, before (ms, exclusive), limit.
local ids = redis.call('ZRANGEBYSCORE', key('delivered'), '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('DEL', key('d:' .. id))
end
if #ids > 0 then
  redis.call('ZREM', key('delivered'), unpack(ids))
end
return #ids
