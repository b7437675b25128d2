-- The pace of one source's API calls, shared by every backfill process: a reservation per
-- call, spaced `interval` seconds apart (so never more than N calls in any window), and a
-- deferral that holds every process back (a 429's Retry-After, a nearly empty bucket).
-- KEYS[1]: the source's key (a hash: tat = the earliest time the next call may start).
-- ARGV[1]: 'take' or 'defer'; ARGV[2]: the interval (take) or the seconds to hold (defer).
-- Returns the seconds the caller waits before its call (take) or the hold now in force (defer).
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or '0')
local seconds = tonumber(ARGV[2])
local slot, next_tat
if ARGV[1] == 'take' then
    slot = math.max(tat, now)
    next_tat = slot + seconds
else
    next_tat = math.max(tat, now + seconds)
    slot = next_tat
end
redis.call('HSET', KEYS[1], 'tat', string.format('%.6f', next_tat))
redis.call('PEXPIRE', KEYS[1], math.ceil((next_tat - now) * 1000) + 60000)
return string.format('%.6f', slot - now)
