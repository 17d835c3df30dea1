-- txn-offsets-end.lua: finish a transaction's staged offset commits for one group.
--
-- KEYS[1] offsets   hash topic:partition -> committed offset (see groups/group-store.ts)
-- KEYS[2] staged    hash topic:partition -> offset staged by this producer's transaction
-- KEYS[3] pending   hash topic:partition -> producer id with a staged offset (requireStable)
-- ARGV[1] producerId   ARGV[2] 1 to commit (materialise), 0 to abort (drop)
--
-- Run by the groups store when the transaction coordinator, which owns the transaction but not
-- the group, ends a transaction: the move is atomic on the group's hash tag, and a staged value
-- only ever comes from this producer's TxnOffsetCommit.
local staged = redis.call('HGETALL', KEYS[2])
for i = 1, #staged, 2 do
  if ARGV[2] == '1' then
    redis.call('HSET', KEYS[1], staged[i], staged[i + 1])
  end
  if redis.call('HGET', KEYS[3], staged[i]) == ARGV[1] then
    redis.call('HDEL', KEYS[3], staged[i])
  end
end
redis.call('DEL', KEYS[2])
return #staged / 2
