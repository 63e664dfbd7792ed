-- Forgets this node: its known-endpoints set, and its consumer if it holds no lease.
-- ARGV: prefix, consumer, known-endpoints set key.
redis.call('DEL', ARGV[3])
if redis.call('EXISTS', STREAM) == 1 then
  local pending = redis.pcall('XPENDING', STREAM, GROUP, '-', '+', 1, ARGV[2])
  if type(pending) == 'table' and #pending == 0 then
    redis.call('XGROUP', 'DELCONSUMER', STREAM, GROUP, ARGV[2])
  end
end
return 1
