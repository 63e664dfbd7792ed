-- Retention: removes messages that have no deliveries, with their index entries.
-- ARGV: prefix, count, then per message: message key, its index block. Returns how many
-- were removed.
local n = tonumber(ARGV[2])
local i = 3
local removed = 0
for _ = 1, n do
  local mk = ARGV[i]
  if redis.call('EXISTS', key('m:' .. mk)) == 1 and redis.call('EXISTS', key('md:' .. mk)) == 0 then
    redis.call('DEL', key('m:' .. mk))
    index_remove(i + 1)
    removed = removed + 1
  end
  i = block_end(i + 1)
end
return removed
