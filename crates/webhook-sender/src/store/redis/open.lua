-- Up to `limit` open deliveries of one endpoint, chain by chain from the front, as
-- { id, record } pairs (read only).
-- ARGV: prefix, endpoint, limit.
local ep, limit = ARGV[2], tonumber(ARGV[3])
local out = {}
local offset = 0
while #out < limit do
  local chains = redis.call('ZRANGE', key('chains:' .. ep), offset, offset + 15)
  if #chains == 0 then
    break
  end
  for _, rk in ipairs(chains) do
    local ids = redis.call('LRANGE', key('chain:' .. ep .. ':' .. rk), 0, limit - #out - 1)
    for _, id in ipairs(ids) do
      out[#out + 1] = { id, redis.call('HGET', key('d:' .. id), 'rec') }
    end
    if #out >= limit then
      break
    end
  end
  offset = offset + 16
end
return out
