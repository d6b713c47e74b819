-- POST /api/v1/feedback: a thumbs rating spread over the runs listed in a file, each
-- from a new user so that no rating supersedes another.
--
--     wrk ... -s feedback.lua URL -- RUN_IDS_FILE TAG
--
-- TAG keeps the user names of one wrk process (a warm-up, a measured run) apart from
-- the next one's.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "stats.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local run_ids, tag
local counter = 0

function init(args)
   run_ids = read_lines(args[1])
   tag = args[2] or "bench"
end

function request()
   counter = counter + 1
   local run_id = run_ids[(counter * 7 + thread_id) % #run_ids + 1]
   local value = (counter % 3 == 0) and "down" or "up"
   local body = string.format(
      '{"run_id":"%s","key":"thumbs","value":"%s","user":"%s-t%d-u%d",'
         .. '"comment":"useful answer","metadata":{"screen":"chat"}}',
      run_id, value, tag, thread_id, counter)
   return wrk.format(nil, nil, nil, body)
end
