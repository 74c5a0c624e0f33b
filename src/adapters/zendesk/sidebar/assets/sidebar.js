// replaydesk's Zendesk sidebar: no framework, no build step. Zendesk's ZAF client gives the ticket;
// replaydesk's own short-lived token (embedded by the server after it verified Zendesk's signed load)
// authorises the JSON calls. No secret is ever in this page.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("rd-config").textContent);
  var app = document.getElementById("app");
  var statusEl = document.getElementById("status");
  var list = document.getElementById("customers");
  var summaryBox = document.getElementById("summary-box");
  var summaryEl = document.getElementById("summary");
  var noteButton = document.getElementById("add-note");
  var noteStatus = document.getElementById("note-status");
  var refreshButton = document.getElementById("refresh");
  var client = null;
  var ticketId = null;
  var token = null;

  function resize() {
    if (client) {
      client.invoke("resize", { width: "100%", height: Math.max(120, document.body.scrollHeight) + "px" });
    }
  }

  function setStatus(state, text) {
    app.setAttribute("data-state", state);
    app.setAttribute("aria-busy", state === "loading" ? "true" : "false");
    statusEl.textContent = text;
    statusEl.className = "status" + (state === "unavailable" || state === "not_allowed" || state === "error" ? " status-error" : "");
    resize();
  }

  function call(method, path, body) {
    var headers = { Authorization: "Bearer " + token };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    var url = "app/api/" + path + (ticketId === null ? "" : (path.indexOf("?") < 0 ? "?" : "&") + "ticket=" + encodeURIComponent(ticketId));
    return fetch(url, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (response) {
        return response.json().catch(function () { return { state: "error", message: "replaydesk answered " + response.status }; });
      });
  }

  function when(text) {
    var date = new Date(text);
    return isNaN(date.getTime()) ? text : date.toLocaleString();
  }

  function render(data) {
    list.textContent = "";
    (data.customers || []).forEach(function (customer) {
      var block = document.createElement("div");
      block.className = "customer";
      var heading = document.createElement("h2");
      heading.textContent = customer.who;
      block.appendChild(heading);
      var ul = document.createElement("ul");
      ul.className = "sessions";
      customer.sessions.forEach(function (session) {
        var li = document.createElement("li");
        li.className = session.likely ? "session likely" : "session";
        li.setAttribute("data-session", session.id);
        if (session.likely) {
          var badge = document.createElement("span");
          badge.className = "badge";
          badge.textContent = "Likely";
          badge.title = "Live when the ticket was created";
          li.appendChild(badge);
        }
        var time = document.createElement("span");
        time.className = "when";
        time.textContent = when(session.created);
        li.appendChild(time);
        var link = document.createElement("a");
        link.href = session.url;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        link.textContent = "Watch replay";
        link.setAttribute("aria-label", "Watch the replay of " + when(session.created) + " (opens in a new tab)");
        li.appendChild(link);
        var summarize = document.createElement("button");
        summarize.type = "button";
        summarize.className = "btn btn-basic";
        summarize.textContent = "Summarize";
        summarize.setAttribute("data-action", "summarize");
        summarize.setAttribute("aria-label", "Summarize the session of " + when(session.created));
        summarize.addEventListener("click", function () { summarizeSession(session.id, summarize); });
        li.appendChild(summarize);
        ul.appendChild(li);
      });
      block.appendChild(ul);
      if (!customer.sessions.length) {
        var none = document.createElement("p");
        none.className = "digest";
        none.textContent = customer.note || ("No sessions in the last " + data.lookback_days + " days.");
        block.appendChild(none);
      }
      if (customer.digest) {
        var digest = document.createElement("p");
        digest.className = "digest";
        digest.textContent = customer.digest;
        block.appendChild(digest);
      } else if (customer.digest_on_request) {
        var ask = document.createElement("button");
        ask.type = "button";
        ask.className = "btn btn-basic";
        ask.textContent = "Digest";
        ask.setAttribute("data-action", "digest");
        ask.setAttribute("aria-label", "Fetch the likely session's digest (one FullStory Activation)");
        ask.addEventListener("click", function () { load("sessions?digest=1"); });
        block.appendChild(ask);
      }
      if (customer.went_wrong && customer.went_wrong.length) {
        var heading = document.createElement("p");
        heading.className = "went-wrong-heading";
        heading.textContent = "What went wrong";
        block.appendChild(heading);
        var wrong = document.createElement("ul");
        wrong.className = "went-wrong";
        wrong.setAttribute("aria-label", "What went wrong in the likely session");
        customer.went_wrong.forEach(function (line) {
          var item = document.createElement("li");
          item.textContent = line;
          wrong.appendChild(item);
        });
        block.appendChild(wrong);
      }
      list.appendChild(block);
    });
  }

  function load(path) {
    setStatus("loading", "Loading sessions…");
    call("GET", path || "sessions").then(function (data) {
      if (data.state === "ok") {
        render(data);
        var count = list.querySelectorAll("li.session").length;
        setStatus("ok", count + (count === 1 ? " session" : " sessions") + ", newest first" +
          (data.not_looked_up ? "; " + data.not_looked_up + " more addresses not looked up" : ""));
        noteButton.disabled = false;
      } else if (data.state === "empty") {
        render(data);
        setStatus("empty", data.message || ("No sessions found in the last " + data.lookback_days + " days."));
      } else {
        setStatus(data.state || "error", data.message || "replaydesk could not answer.");
      }
    }, function () {
      setStatus("error", "replaydesk is not reachable. Try Refresh.");
    });
  }

  function summarizeSession(id, button) {
    button.disabled = true;
    summaryBox.hidden = false;
    summaryEl.textContent = "Summarizing…";
    resize();
    call("POST", "summary", { session: id }).then(function (data) {
      summaryEl.setAttribute("data-state", data.state);
      summaryEl.textContent = data.text || data.message || "No summary.";
      button.disabled = false;
      resize();
    }, function () {
      summaryEl.textContent = "replaydesk is not reachable. Try again.";
      button.disabled = false;
    });
  }

  noteButton.addEventListener("click", function () {
    noteButton.disabled = true;
    noteStatus.textContent = "Adding the note…";
    call("POST", "note", {}).then(function (data) {
      noteStatus.setAttribute("data-state", data.state);
      noteStatus.textContent = data.message || data.state;
      resize();
    }, function () {
      noteStatus.textContent = "replaydesk is not reachable. Try again.";
      noteButton.disabled = false;
    });
  });

  refreshButton.addEventListener("click", function () { load(); });

  function start() {
    client = window.ZAFClient ? window.ZAFClient.init() : false;
    if (!client) {
      setStatus("not_allowed", "Open this app from a ticket in Zendesk (the page needs Zendesk's origin and app_guid).");
      return;
    }
    // Only the ticket comes from Zendesk's client; who the agent is, replaydesk knows from Zendesk's
    // signed load, and it checks that they may see this ticket before it answers.
    client.get("ticket").then(function (answer) {
      var ticket = answer.ticket || {};
      token = config.token;
      return fetch("app/api/ticket", {
        method: "POST",
        headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
        body: JSON.stringify({ ticket_id: Number(ticket.id) })
      }).then(function (response) { return response.json(); }).then(function (data) {
        if (!data.token) {
          setStatus("not_allowed", data.message || "replaydesk refused this ticket.");
          return;
        }
        token = data.token;
        ticketId = Number(ticket.id);
        load();
      });
    }).catch(function () {
      setStatus("error", "Zendesk did not give the ticket to the app. Try reloading the ticket.");
    });
  }

  start();
}());
