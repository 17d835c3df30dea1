-- commit.lua: assign offsets to one partition's batches of one segment object, atomically.
--
-- KEYS[1] meta       hash: hw, logStart, maxts
-- KEYS[2] idx        sorted set of runs (score = last offset)
-- KEYS[3] tidx       sorted set: score = running max timestamp, member = last offset
-- KEYS[4] producers  hash: producer id -> producer state string
-- KEYS[5] txn        hash: producer id -> "<epoch>|<firstOffset>" of the transaction open on
--                    this partition (firstOffset -1 until its first batch arrives)
-- KEYS[6] aborted    sorted set of aborted transactions: score = abort marker offset,
--                    member "<producerId>|<firstOffset>|<markerOffset>"
-- KEYS[7] seen       sorted set: score = when a producer's batch was last committed here (ms),
--                    member = producer id
-- ARGV[1] objectKey  ARGV[2] batch count B  ARGV[3] now (ms)  ARGV[4] expiry cut-off (ms):
--   producer states last committed before it are removed (Kafka's producer.id.expiration.ms),
--   except while the producer has a transaction open here;
-- ARGV[5] commit-by time (ms, Redis's clock; -1 for none): the commit deadline
--   (commit-deadline.ts). Past it, nothing is written and the reply is { -1 }: object GC may
--   already count the object as garbage. Checked here, on Redis's clock, so no pause of the
--   broker between its own check and this script can stretch the deadline;
-- then 9 values per batch, in log order:
--   byteStart byteLength lastOffsetDelta producerId producerEpoch baseSequence maxTimestamp
--   flags recordCount
--   flags: bit 0 transactional, bit 1 control (a transaction marker), bit 2 abort (with bit 1)
--   recordCount is accepted and unused.
--
-- Transactions: a transactional data batch is accepted only when its producer opened a
-- transaction on this partition with the same epoch (AddPartitionsToTxn, txn-open.lua) — the
-- server-side defence that also protects clients using old protocol versions — otherwise
-- INVALID_TXN_STATE. A marker closes the producer's transaction here; an abort marker records
-- the aborted range. The LSO (meta field lso, absent when no transaction is open) is the
-- first offset of the oldest open transaction; it is recomputed whenever transactions change.
--
-- Returns a flat array: per batch `code, baseOffset, duplicate (0/1)`, then hw and logStart;
-- or { -1 } when the commit-by time has passed.
-- code 0 with duplicate 1 means the batch was already stored at baseOffset (Kafka answers a
-- duplicate with success and the original offset). Rejected batches answer baseOffset -1.
--
-- Producer state string (one hash field per producer id):
--   <epoch>;<firstSeq>,<lastSeq>,<baseOffset>,<flags>;...   up to 5 entries, oldest first
-- e.g. "3;0,4,100,0;5,9,105,0". A state with no entries ("3") is valid: the next batch of
-- epoch 3 must then start at sequence 0.
--
-- Nothing is written until every batch has been checked, so a malformed state string or
-- argument aborts the script before it changes anything (Redis does not roll scripts back).

local OUT_OF_ORDER_SEQUENCE_NUMBER = 45
local INVALID_PRODUCER_EPOCH = 47
local INVALID_TXN_STATE = 48
local FLAG_TRANSACTIONAL = 1
local FLAG_CONTROL = 2
local FLAG_ABORT = 4
-- Kafka keeps the metadata of the last five batches per producer: a producer has at most five
-- requests in flight (max.in.flight.requests.per.connection <= 5 with idempotence), so any
-- retry it can send is one of these five.
local MAX_ENTRIES = 5
-- Sequence numbers are int32 and wrap to 0 after 2147483647 (Kafka's incrementSequence).
local SEQ_MOD = 2147483648

-- Offsets reach 2^53; Lua's tostring prints 14 significant digits ("1.1258999068426e+15"),
-- so every number written to Redis goes through %.0f.
local function fmt(n)
  return string.format('%.0f', n)
end

local metaKey, idxKey, tidxKey, producersKey, txnKey, abortedKey, seenKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local objectKey = ARGV[1]
local count = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local expireBefore = tonumber(ARGV[4])
local commitBy = tonumber(ARGV[5])
if count == nil or count < 0 or now == nil or expireBefore == nil or commitBy == nil or #ARGV ~= 5 + 9 * count then
  return redis.error_reply('ERR commit: expected objectKey, batch count, now, expiry cut-off, commit-by time and 9 values per batch, got ' .. #ARGV .. ' arguments')
end
if commitBy >= 0 then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > commitBy then
    return { -1 }
  end
end
-- Maximum producer states removed per call, so that a backlog is worked off a bit per commit.
local EXPIRE_PER_CALL = 16

local meta = redis.call('HMGET', metaKey, 'hw', 'logStart', 'maxts')
local hw = tonumber(meta[1]) or 0
local logStart = tonumber(meta[2]) or 0
local maxts = tonumber(meta[3]) or -1
local startHw, startMaxts = hw, maxts

-- Producer states touched by this commit, parsed once: id -> { epoch = n, entries = { {first, last, base, flags}, ... } }
local states = {}
local dirty = {}
local dirtyOrder = {}

local function loadState(pid)
  local state = states[pid]
  if state ~= nil then
    return state
  end
  local raw = redis.call('HGET', producersKey, pid)
  if not raw then
    return nil
  end
  state = { entries = {} }
  local first = true
  for field in string.gmatch(raw, '[^;]+') do
    if first then
      state.epoch = tonumber(field)
      first = false
    else
      local f, l, b, fl = string.match(field, '^(%d+),(%d+),(%d+),(%d+)$')
      if f == nil then
        error('commit: unreadable state "' .. raw .. '" of producer ' .. pid)
      end
      state.entries[#state.entries + 1] = { tonumber(f), tonumber(l), tonumber(b), tonumber(fl) }
    end
  end
  if state.epoch == nil then
    error('commit: unreadable state "' .. raw .. '" of producer ' .. pid)
  end
  states[pid] = state
  return state
end

local function markDirty(pid)
  if not dirty[pid] then
    dirty[pid] = true
    dirtyOrder[#dirtyOrder + 1] = pid
  end
end

-- Open transactions touched by this commit: pid -> { epoch, first } (false = closed now).
local txns = {}
local txnsChanged = false
local function loadTxn(pid)
  local t = txns[pid]
  if t ~= nil then
    return t
  end
  local raw = redis.call('HGET', txnKey, pid)
  if not raw then
    txns[pid] = false
    return false
  end
  local e, f = string.match(raw, '^(%d+)|(-?%d+)$')
  t = { epoch = tonumber(e), first = tonumber(f) }
  txns[pid] = t
  return t
end

local function hasFlag(flags, bit)
  return math.floor(flags / bit) % 2 == 1
end

local abortedNew = {}
-- Producers with a batch accepted (or recognised as a duplicate) here: pid -> true, in order.
local seen = {}
local seenOrder = {}

local out = {}
local runs = {}
local run = nil

local function closeRun()
  if run ~= nil then
    runs[#runs + 1] = run
    run = nil
  end
end

for i = 0, count - 1 do
  local a = 6 + i * 9
  local byteStart = tonumber(ARGV[a])
  local byteLength = tonumber(ARGV[a + 1])
  local lastOffsetDelta = tonumber(ARGV[a + 2])
  local pidArg = ARGV[a + 3]
  local producerId = tonumber(pidArg)
  local epoch = tonumber(ARGV[a + 4])
  local baseSequence = tonumber(ARGV[a + 5])
  local maxTimestamp = tonumber(ARGV[a + 6])
  local flags = tonumber(ARGV[a + 7])

  local code, duplicateOf = 0, nil
  local state = nil
  local lastSequence = 0
  local isControl = hasFlag(flags, FLAG_CONTROL)
  if producerId >= 0 and isControl then
    -- A transaction marker from the coordinator: no sequence; a newer epoch fences older ones.
    state = loadState(pidArg)
    if state == nil then
      state = { epoch = epoch, entries = {} }
      states[pidArg] = state
      markDirty(pidArg)
    elseif epoch < state.epoch then
      code = INVALID_PRODUCER_EPOCH
    elseif epoch > state.epoch then
      state.epoch = epoch
      state.entries = {}
      markDirty(pidArg)
    end
  elseif producerId >= 0 then
    lastSequence = (baseSequence + lastOffsetDelta) % SEQ_MOD
    state = loadState(pidArg)
    if state == nil then
      -- No state (new producer, or its state was removed): Kafka accepts any sequence.
      state = { epoch = epoch, entries = {} }
      states[pidArg] = state
    elseif epoch < state.epoch then
      -- A fenced (older) producer instance; Kafka answers INVALID_PRODUCER_EPOCH to Produce.
      code = INVALID_PRODUCER_EPOCH
    elseif epoch > state.epoch then
      -- A new epoch restarts the sequence: it must begin at 0, and the old epoch's batches
      -- no longer count as duplicates.
      if baseSequence ~= 0 then
        code = OUT_OF_ORDER_SEQUENCE_NUMBER
      else
        state.epoch = epoch
        state.entries = {}
      end
    else
      -- Same epoch: a retry of one of the last five batches is a duplicate; Kafka matches on
      -- (first sequence, last sequence).
      for _, e in ipairs(state.entries) do
        if e[1] == baseSequence and e[2] == lastSequence then
          duplicateOf = e[3]
          break
        end
      end
      if duplicateOf == nil then
        local expected = 0
        if #state.entries > 0 then
          expected = (state.entries[#state.entries][2] + 1) % SEQ_MOD
        end
        if baseSequence ~= expected then
          code = OUT_OF_ORDER_SEQUENCE_NUMBER
        end
      end
    end
  end

  local txn = nil
  if code == 0 and duplicateOf == nil and producerId >= 0 and not isControl and hasFlag(flags, FLAG_TRANSACTIONAL) then
    txn = loadTxn(pidArg)
    if not txn or txn.epoch ~= epoch then
      code = INVALID_TXN_STATE
    end
  end

  if code == 0 and producerId >= 0 and not seen[pidArg] then
    seen[pidArg] = true
    seenOrder[#seenOrder + 1] = pidArg
  end

  if code ~= 0 then
    out[#out + 1] = code
    out[#out + 1] = -1
    out[#out + 1] = 0
    closeRun()
  elseif duplicateOf ~= nil then
    out[#out + 1] = 0
    out[#out + 1] = duplicateOf
    out[#out + 1] = 1
    closeRun()
  else
    local base = hw
    local last = base + lastOffsetDelta
    hw = last + 1
    if txn and txn.first < 0 then
      txn.first = base
      txnsChanged = true
    end
    if isControl then
      local open = loadTxn(pidArg)
      if open then
        if hasFlag(flags, FLAG_ABORT) and open.first >= 0 then
          abortedNew[#abortedNew + 1] = { pidArg, open.first, base }
        end
        txns[pidArg] = false
        txnsChanged = true
      end
    elseif state ~= nil then
      local entries = state.entries
      entries[#entries + 1] = { baseSequence, lastSequence, base, flags }
      if #entries > MAX_ENTRIES then
        table.remove(entries, 1)
      end
      markDirty(pidArg)
    end
    out[#out + 1] = 0
    out[#out + 1] = base
    out[#out + 1] = 0
    -- Adjacent bytes and (necessarily) consecutive offsets: one run, one index entry.
    if run ~= nil and byteStart == run.byteEnd then
      run.last = last
      run.byteEnd = byteStart + byteLength
      run.batches = run.batches + 1
      if maxTimestamp > run.maxts then
        run.maxts = maxTimestamp
      end
    else
      closeRun()
      run = { base = base, last = last, maxts = maxTimestamp, byteStart = byteStart, byteEnd = byteStart + byteLength, batches = 1 }
    end
  end
end
closeRun()

-- All checks passed: write.
for _, r in ipairs(runs) do
  local member = fmt(r.base) .. '|' .. fmt(r.last) .. '|' .. fmt(r.maxts) .. '|' .. fmt(r.byteStart) .. '|' ..
    fmt(r.byteEnd - r.byteStart) .. '|' .. fmt(r.batches) .. '|' .. objectKey
  redis.call('ZADD', idxKey, fmt(r.last), member)
  -- tidx holds only the runs that raise the running max, so its scores are strictly
  -- increasing and "first entry with score >= T" is the first run reaching T. (With an entry
  -- per run, equal scores would sort by member as strings, "10" before "9".)
  if r.maxts > maxts then
    maxts = r.maxts
    redis.call('ZADD', tidxKey, fmt(maxts), fmt(r.last))
  end
end
if hw ~= startHw then
  redis.call('HSET', metaKey, 'hw', fmt(hw))
end
if maxts ~= startMaxts then
  redis.call('HSET', metaKey, 'maxts', fmt(maxts))
end
for _, pid in ipairs(dirtyOrder) do
  local state = states[pid]
  local parts = { fmt(state.epoch) }
  for _, e in ipairs(state.entries) do
    parts[#parts + 1] = fmt(e[1]) .. ',' .. fmt(e[2]) .. ',' .. fmt(e[3]) .. ',' .. fmt(e[4])
  end
  redis.call('HSET', producersKey, pid, table.concat(parts, ';'))
end

for _, a in ipairs(abortedNew) do
  redis.call('ZADD', abortedKey, fmt(a[3]), a[1] .. '|' .. fmt(a[2]) .. '|' .. fmt(a[3]))
end
if txnsChanged then
  for pid, t in pairs(txns) do
    if t then
      redis.call('HSET', txnKey, pid, fmt(t.epoch) .. '|' .. fmt(t.first))
    else
      redis.call('HDEL', txnKey, pid)
    end
  end
  -- LSO: the first offset of the oldest open transaction that has data; absent means hw.
  local lso = nil
  local all = redis.call('HGETALL', txnKey)
  for j = 2, #all, 2 do
    local f = tonumber(string.match(all[j], '|(-?%d+)$'))
    if f ~= nil and f >= 0 and (lso == nil or f < lso) then
      lso = f
    end
  end
  if lso == nil then
    redis.call('HDEL', metaKey, 'lso')
  else
    redis.call('HSET', metaKey, 'lso', fmt(lso))
  end
end

for _, pid in ipairs(seenOrder) do
  redis.call('ZADD', seenKey, fmt(now), pid)
end
-- Expiry: forget producers silent since the cut-off. One with a transaction still open here
-- is kept (its marker will touch it again) and looked at again one period later.
local stale = redis.call('ZRANGEBYSCORE', seenKey, '-inf', '(' .. fmt(expireBefore), 'LIMIT', 0, EXPIRE_PER_CALL)
for _, pid in ipairs(stale) do
  if redis.call('HEXISTS', txnKey, pid) == 1 then
    redis.call('ZADD', seenKey, fmt(now), pid)
  else
    redis.call('HDEL', producersKey, pid)
    redis.call('ZREM', seenKey, pid)
  end
end

out[#out + 1] = hw
out[#out + 1] = logStart
return out
