-- remove.lua: drop waiting entries, if they are still the ones the caller read.
--
-- Key schema: see push.lua. {P}:entries maps job_id -> SEQ .. TYPE, {P}:queue:T is a
-- zset of SEQ .. JOB_ID.
--
-- The caller first reads the ids' {P}:entries values (HMGET), so that it can name the
-- zset of each id's type in KEYS, as a cluster requires; this script then checks that
-- each value is still the one read. An id popped and pushed again in between has a new
-- SEQ (and maybe another type): it is reported back, and the caller reads it again.
--
-- KEYS[1]        {P}:entries
-- KEYS[1 + t]    {P}:queue:T_t   for t = 1..k, the types the caller read
-- ARGV           one triple per id: JOB_ID, VALUE (SEQ .. TYPE as read), t (its type's index)
--
-- Returns {removed, JOB_ID...}: how many entries were dropped, then the ids whose value
-- changed since the caller read it (nothing was done to those).

local reply = {0}
for at = 1, #ARGV, 3 do
  local job_id, value = ARGV[at], ARGV[at + 1]
  local now = redis.call("HGET", KEYS[1], job_id)
  if now == value then
    local t = tonumber(ARGV[at + 2])
    redis.call("ZREM", KEYS[1 + t], string.sub(value, 1, 16) .. job_id)
    redis.call("HDEL", KEYS[1], job_id)
    reply[1] = reply[1] + 1
  elseif now then
    reply[#reply + 1] = job_id
  end
end
return reply
