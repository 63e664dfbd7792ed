-- The start of the idempotency window of one (organization, type, entity) at `now`:
-- the current start while now - start < window, else now (a new window).
-- ARGV: prefix, triple, now (s), window (s).
local k = key('win:' .. ARGV[2])
local now, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local current = redis.call('GET', k)
if current and now - tonumber(current) < window then
  return current
end
-- Kept twice the window, so that engine and Redis clocks need not tick together.
redis.call('SET', k, ARGV[3], 'EX', 2 * window)
return ARGV[3]
