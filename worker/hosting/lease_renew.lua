-- Extend a slot lease (KEYS[1]) by ARGV[2] ms, only while token ARGV[1] owns it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
