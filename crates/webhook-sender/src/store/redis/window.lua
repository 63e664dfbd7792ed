-- The start of the idempotency window of one (organization, type, entity) at `now`:
-- the current start while now - start < window, else now (a new window); returned with
-- the configuration version (`cfgver`, '0' when unset), which a publish also needs.
-- ARGV: prefix, triple, now (s), window (s).
local k = key('win:' .. ARGV[2])
local now, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local version = redis.call('GET', key('cfgver')) or '0'
local current = redis.call('GET', k)
if current and now - tonumber(current) < window then
  return { current, version }
end
-- Kept twice the window, so that engine and Redis clocks need not tick together.
redis.call('SET', k, ARGV[3], 'EX', 2 * window)
return { ARGV[3], version }
