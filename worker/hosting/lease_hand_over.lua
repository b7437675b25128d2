-- Pass a slot lease (KEYS[1]) from token ARGV[1] to token ARGV[2] for ARGV[3] ms, only if
-- ARGV[1] still owns it: compare-and-set, so a slot has one owner at a time.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return false
