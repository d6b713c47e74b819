-- pykoi's vote: POST /chat/qa_table/update {"id", "vote_status"} spread over the
-- answers listed in a file. pykoi keeps one vote per answer with no user, so a vote
-- overwrites the answer's last one. A failure comes back as 200 {"status": "500"},
-- counted as an app error.
--
--     wrk ... -s pykoi_vote.lua URL -- ANSWER_IDS_FILE
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "stats.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
app_error_marker = '"status":"500"'

local answer_ids
local counter = 0

function init(args)
   answer_ids = read_lines(args[1])
end

function request()
   counter = counter + 1
   local id = answer_ids[(counter * 7 + thread_id) % #answer_ids + 1]
   local vote = (counter % 3 == 0) and "down" or "up"
   local body = string.format('{"id":%s,"vote_status":"%s"}', id, vote)
   return wrk.format(nil, nil, nil, body)
end
