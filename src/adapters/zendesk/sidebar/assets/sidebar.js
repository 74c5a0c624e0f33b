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
  var escalateBox = document.getElementById("escalate-box");
  var escalateFor = document.getElementById("escalate-for");
  var trackerRow = document.getElementById("escalate-tracker-row");
  var trackerSelect = document.getElementById("escalate-tracker");
  var titleInput = document.getElementById("escalate-title");
  var noteInput = document.getElementById("escalate-note");
  var issueInput = document.getElementById("escalate-issue");
  var escalateSend = document.getElementById("escalate-send");
  var escalateStatus = document.getElementById("escalate-status");
  var client = null;
  var ticketId = null;
  var ticketSubject = "";
  var token = null;
  // The trackers replaydesk escalates to (the sessions answer names them), and the session the open
  // escalation form is for.
  var trackers = [];
  var escalating = null;

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
        if (session.likely && trackers.length) {
          var escalate = document.createElement("button");
          escalate.type = "button";
          escalate.className = "btn btn-basic";
          escalate.textContent = "Escalate";
          escalate.setAttribute("data-action", "escalate");
          escalate.setAttribute("aria-label", "Escalate the session of " + when(session.created) + " to " + trackers.map(trackerTitle).join(" or "));
          escalate.addEventListener("click", function () { openEscalation(session, customer.who); });
          li.appendChild(escalate);
        }
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
      trackers = data.trackers || [];
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

  // Escalate: the same fields as Slack's modal. The answer is "queued" (the ticket gets the note with
  // the issue), "already" (with the issue), or a refusal; after "queued" the page asks again a few
  // times, which answers "already" with the issue once the worker has made it.
  function trackerTitle(name) { return name.charAt(0).toUpperCase() + name.slice(1); }

  function openEscalation(session, who) {
    escalating = session;
    escalateBox.hidden = false;
    escalateFor.textContent = "The session of " + when(session.created) + " (" + who + ")";
    trackerSelect.textContent = "";
    trackers.forEach(function (name) {
      var option = document.createElement("option");
      option.value = name;
      option.textContent = trackerTitle(name);
      trackerSelect.appendChild(option);
    });
    trackerRow.hidden = trackers.length < 2;
    if (!titleInput.value) { titleInput.value = ticketSubject; }
    escalateStatus.textContent = "";
    escalateStatus.removeAttribute("data-state");
    escalateSend.disabled = false;
    resize();
    titleInput.focus();
  }

  function showEscalation(data, mine) {
    escalateStatus.setAttribute("data-state", data.state || "error");
    escalateStatus.textContent = "";
    if (data.state === "already" && data.url) {
      escalateStatus.appendChild(document.createTextNode(mine ? "Escalated to " : "Already escalated: "));
      var link = document.createElement("a");
      link.href = data.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.textContent = data.key;
      escalateStatus.appendChild(link);
    } else {
      escalateStatus.textContent = data.message || data.state || "replaydesk could not answer.";
    }
    resize();
  }

  function askEscalation(body, polls) {
    call("POST", "escalate", body).then(function (data) {
      // A poll that finds replaydesk busy (the sidebar's allowance) leaves "queued" shown: the
      // escalation is stored; the next poll, or the ticket's note, tells the issue.
      var polling = polls < 3;
      if (polling && data.state === "busy") { data = { state: "queued", message: escalateStatus.textContent }; }
      showEscalation(data, polling);
      if (data.state === "queued" && polls > 0) {
        setTimeout(function () { askEscalation(body, polls - 1); }, 4000);
      } else if (data.state !== "queued" && data.state !== "already") {
        escalateSend.disabled = false;
      }
    }, function () {
      escalateStatus.textContent = "replaydesk is not reachable. Try again.";
      escalateSend.disabled = false;
    });
  }

  escalateSend.addEventListener("click", function () {
    if (!escalating) { return; }
    escalateSend.disabled = true;
    escalateStatus.textContent = "Escalating…";
    var body = { session: escalating.id };
    if (trackers.length > 1) { body.tracker = trackerSelect.value; }
    ["title", "note", "issue"].forEach(function (field) {
      var value = { title: titleInput, note: noteInput, issue: issueInput }[field].value.trim();
      if (value) { body[field] = value; }
    });
    askEscalation(body, 3);
  });

  document.getElementById("escalate-cancel").addEventListener("click", function () {
    escalateBox.hidden = true;
    escalating = null;
    resize();
  });

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
      ticketSubject = ticket.subject || "";
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
