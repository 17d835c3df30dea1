-- txn-open.lua: open a producer's transaction on one partition (AddPartitionsToTxn).
--
-- KEYS[1] producers  KEYS[2] txn (see commit.lua)
-- ARGV[1] producerId  ARGV[2] producerEpoch
--
-- Returns 0 when the transaction is open on the partition for this epoch (now or already),
-- 47 INVALID_PRODUCER_EPOCH when the partition has seen a newer epoch of this producer (the
-- caller is a fenced zombie), 51 CONCURRENT_TRANSACTIONS while a transaction of an older epoch
-- is still open here (its abort marker has not been written yet; the client retries).
local pid, epoch = ARGV[1], tonumber(ARGV[2])
local state = redis.call('HGET', KEYS[1], pid)
if state then
  local stored = tonumber(string.match(state, '^(%d+)'))
  if stored ~= nil and stored > epoch then
    return 47
  end
end
local current = redis.call('HGET', KEYS[2], pid)
if current then
  local e = tonumber(string.match(current, '^(%d+)|'))
  if e == epoch then
    return 0
  end
  if e > epoch then
    return 47
  end
  return 51
end
redis.call('HSET', KEYS[2], pid, string.format('%d', epoch) .. '|-1')
return 0
