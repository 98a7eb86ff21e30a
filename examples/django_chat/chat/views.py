from django.http import HttpResponse, JsonResponse

PAGE = """<!doctype html>
<title>uisge chat</title>
<ul id="log"></ul>
<form id="say"><input id="text" autocomplete="off"><button>say</button></form>
<script>
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/chat/lobby/");
ws.onopen = () => document.title = "uisge chat (connected)";
ws.onmessage = (e) => {
  const li = document.createElement("li");
  li.textContent = JSON.parse(e.data).message;
  document.getElementById("log").appendChild(li);
};
document.getElementById("say").onsubmit = (e) => {
  e.preventDefault();
  ws.send(JSON.stringify({message: document.getElementById("text").value}));
};
</script>
"""


async def room(request):
    return HttpResponse(PAGE)


async def health(request):
    return JsonResponse({"ok": True})
