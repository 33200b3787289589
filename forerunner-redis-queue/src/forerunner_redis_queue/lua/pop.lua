-- pop.lua: remove and return up to COUNT waiting entries of the requested types.
--
-- Key schema: see push.lua. {P}:entries maps job_id -> SEQ .. TYPE, {P}:queue:T is a
-- zset of SEQ .. JOB_ID scored -PRIORITY, {P}:signal:T holds at most one wake-up token.
--
-- KEYS[1]        {P}:entries
-- KEYS[2]        {P}:receipt:C, this client's receipt
-- KEYS[1 + 2t]   {P}:queue:T_t   for t = 1..k, the distinct requested types
-- KEYS[2 + 2t]   {P}:signal:T_t
-- ARGV[1]        TOKEN, unique to this request (32 characters)
-- ARGV[2]        how long the receipt lives, in milliseconds
-- ARGV[3]        COUNT >= 1
-- ARGV[4]        "1" when the caller consumed a token to get here: pass the wake-up on
-- ARGV[5]        "" for fifo order; otherwise a random seed, for uniform random order
--
-- Returns a flat array of triples JOB_ID, t (the index of its type), SCORE.
--
-- fifo: the lowest score first, then the lowest SEQ, across the requested types: the
-- heads of the k zsets are merged. random: each entry is drawn uniformly among all the
-- waiting entries of the requested types, so none is starved by newer ones.
--
-- Receipt: a non-empty reply is stored as TOKEN .. msgpack(reply). A request whose
-- reply was lost on the way (a dropped connection) is retried with the same TOKEN and
-- gets the stored reply instead of popping other entries: the popped ones are not lost.
--
-- Pass-on: a blocked pop sleeps on the signal lists and wakes by taking their token.
-- Having popped, it leaves a token on each requested type that still has entries, so
-- the next blocked pop wakes too: one token per type wakes every waiter in turn.

local token = ARGV[1]
local last = redis.call("GET", KEYS[2])
if last and string.sub(last, 1, #token) == token then
  return cmsgpack.unpack(string.sub(last, #token + 1))
end

local count = tonumber(ARGV[3])
local k = (#KEYS - 2) / 2
local reply = {}

local function take(t, member, score)
  local job_id = string.sub(member, 17)
  redis.call("HDEL", KEYS[1], job_id)
  reply[#reply + 1] = job_id
  reply[#reply + 1] = t
  reply[#reply + 1] = score
end

local function remove_members(key, members)
  for first = 1, #members, 1000 do
    redis.call("ZREM", key, unpack(members, first, math.min(first + 999, #members)))
  end
end

if ARGV[5] ~= "" then
  math.randomseed(tonumber(ARGV[5]))
  local sizes, total = {}, 0
  for t = 1, k do
    sizes[t] = redis.call("ZCARD", KEYS[1 + 2 * t])
    total = total + sizes[t]
  end
  for _ = 1, math.min(count, total) do
    local rank, t = math.random(total) - 1, 1
    while rank >= sizes[t] do
      rank = rank - sizes[t]
      t = t + 1
    end
    local got = redis.call("ZRANGE", KEYS[1 + 2 * t], rank, rank, "WITHSCORES")
    redis.call("ZREM", KEYS[1 + 2 * t], got[1])
    take(t, got[1], got[2])
    sizes[t] = sizes[t] - 1
    total = total - 1
  end
elseif k == 1 then
  local got = redis.call("ZPOPMIN", KEYS[3], count)
  for i = 1, #got, 2 do
    take(1, got[i], got[i + 1])
  end
else
  local heads, cursor, taken = {}, {}, {}
  for t = 1, k do
    heads[t] = redis.call("ZRANGE", KEYS[1 + 2 * t], 0, count - 1, "WITHSCORES")
    cursor[t] = 1
    taken[t] = {}
  end
  for _ = 1, count do
    local best, best_score, best_seq
    for t = 1, k do
      local head, i = heads[t], cursor[t]
      if i < #head then
        local score, seq = tonumber(head[i + 1]), tonumber(string.sub(head[i], 1, 16), 16)
        if not best or score < best_score or (score == best_score and seq < best_seq) then
          best, best_score, best_seq = t, score, seq
        end
      end
    end
    if not best then
      break
    end
    local i = cursor[best]
    local member = heads[best][i]
    taken[best][#taken[best] + 1] = member
    take(best, member, heads[best][i + 1])
    cursor[best] = i + 2
  end
  for t = 1, k do
    remove_members(KEYS[1 + 2 * t], taken[t])
  end
end

if #reply > 0 then
  redis.call("SET", KEYS[2], token .. cmsgpack.pack(reply), "PX", ARGV[2])
end
if ARGV[4] == "1" then
  for t = 1, k do
    local signal = KEYS[2 + 2 * t]
    if redis.call("ZCARD", KEYS[1 + 2 * t]) > 0 and redis.call("LLEN", signal) == 0 then
      redis.call("RPUSH", signal, "1")
    end
  end
end
return reply
