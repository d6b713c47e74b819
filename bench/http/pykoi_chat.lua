-- pykoi's chat: POST /chat/{message}, the question in the path and no body; pykoi
-- answers a failure as 200 {"status": "500"}, counted as an app error.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "stats.lua")

wrk.method = "POST"
app_error_marker = '"status":"500"'
