-- delete-records.lua: move a partition's log start offset forward (Kafka DeleteRecords).
--
-- KEYS[1] meta  KEYS[2] idx  KEYS[3] tidx  KEYS[4] aborted
-- ARGV[1] target offset; -1 means the high watermark ("delete everything written so far").
--
-- Returns { errorCode, logStart }: { 0, new logStart } or { OFFSET_OUT_OF_RANGE, logStart }
-- when the target is beyond the high watermark (or negative other than -1). A target below
-- the current logStart changes nothing and answers the current logStart, as Kafka does.
--
-- Runs entirely below the new logStart leave idx, and aborted-transaction entries whose abort
-- marker is below it leave aborted. A run straddling it stays: fetches from logStart still
-- need its bytes (clients skip the leading records of a batch).

local OFFSET_OUT_OF_RANGE = 1
local SCAN = 128

local function fmt(n)
  return string.format('%.0f', n)
end

local metaKey, idxKey, tidxKey, abortedKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local target = tonumber(ARGV[1])
if target == nil then
  return redis.error_reply('ERR delete-records: target offset "' .. tostring(ARGV[1]) .. '" is not a number')
end

local meta = redis.call('HMGET', metaKey, 'hw', 'logStart')
local hw = tonumber(meta[1]) or 0
local logStart = tonumber(meta[2]) or 0

if target == -1 then
  target = hw
end
if target < 0 or target > hw then
  return { OFFSET_OUT_OF_RANGE, logStart }
end
if target <= logStart then
  return { 0, logStart }
end

logStart = target
redis.call('HSET', metaKey, 'logStart', fmt(logStart))
redis.call('ZREMRANGEBYSCORE', idxKey, '-inf', '(' .. fmt(logStart))
-- Aborted transactions whose abort marker lies below the new logStart: a read_committed fetch
-- starts at or above logStart and is sent only those whose marker is at or after its offset
-- (PartitionStore.abortedTransactions), so these can never be sent again. Kafka drops them
-- with the segments holding their markers.
redis.call('ZREMRANGEBYSCORE', abortedKey, '-inf', '(' .. fmt(logStart))

-- tidx scores strictly increase with offset (commit.lua adds an entry only when a run raises
-- the running max), so entries of deleted runs form a prefix. Remove all of them but the
-- newest: it still carries the running max that the remaining runs start from, and readers
-- resolve a tidx entry to the first run of idx whose last offset is >= its member, which for
-- a deleted run is the first run that remains.
local stale = 0
while true do
  local page = redis.call('ZRANGE', tidxKey, stale, stale + SCAN - 1)
  local n = 0
  for _, member in ipairs(page) do
    if tonumber(member) >= logStart then
      break
    end
    n = n + 1
  end
  stale = stale + n
  if n < SCAN then
    break
  end
end
if stale >= 2 then
  redis.call('ZREMRANGEBYRANK', tidxKey, 0, stale - 2)
end

return { 0, logStart }
