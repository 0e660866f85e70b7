// The live feed: alerts arrive over Server-Sent Events from /api/v1/feed (the session cookie logs it in).
// EventSource reconnects by itself and sends Last-Event-ID, so the collector replays what was missed.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("alerts");
  const template = document.getElementById("alert-row");
  const empty = document.getElementById("empty");
  const live = document.getElementById("live-status");
  const announce = document.getElementById("announce");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const filters = { client: list.dataset.client, site: list.dataset.site, severity: list.dataset.severity,
                    kind: list.dataset.kind };
  const ALERT_EVENTS = ["opened", "reopened", "changed", "updated", "resolved", "acknowledged", "snoozed", "flapping"];
  const options = document.getElementById("feed-options");
  if (window.matchMedia("(min-width: 700px)").matches) options.open = true;
  let lastId = list.dataset.after;
  let source = null;
  let audio = null;

  // Opt-ins for critical alerts, remembered in this browser.
  const sound = document.getElementById("opt-sound");
  const notify = document.getElementById("opt-notify");
  sound.checked = localStorage.getItem("fieldpost.sound") === "on";
  notify.checked = localStorage.getItem("fieldpost.notify") === "on" && "Notification" in window
    && Notification.permission === "granted";
  sound.addEventListener("change", () => {
    localStorage.setItem("fieldpost.sound", sound.checked ? "on" : "off");
    if (sound.checked) beep();  // a click is the gesture browsers want before they play anything
  });
  notify.addEventListener("change", async () => {
    if (notify.checked && "Notification" in window && Notification.permission !== "granted") {
      notify.checked = (await Notification.requestPermission()) === "granted";
    }
    localStorage.setItem("fieldpost.notify", notify.checked ? "on" : "off");
  });

  function beep() {
    audio = audio || new AudioContext();
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.value = 0.15;
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.35);
  }

  function status(alert) {
    if (alert.state === "resolved") return "resolved";
    const words = [alert.acknowledged_by ? "acknowledged by " + alert.acknowledged_by : "open"];
    if (alert.snoozed_until) words.push("snoozed until " + new Date(alert.snoozed_until).toLocaleString());
    if (alert.flapping) words.push("flapping");
    return words.join(", ");
  }

  function wanted(alert) {
    const fields = { client: alert.client, site: alert.site, severity: alert.severity, kind: alert.rule };
    // A signal covers its rules: "updates" shows updates.security and updates.package_index.
    const covers = (name, value) => fields[name] === value || (name === "kind" && fields.kind.startsWith(value + "."));
    return Object.entries(filters).every(([name, value]) => !value || covers(name, value));
  }

  function fill(row, alert) {
    row.className = "alert sev-" + alert.severity + " state-" + alert.state;
    Object.assign(row.dataset, { alertId: alert.alert_id, client: alert.client, site: alert.site,
                                 severity: alert.severity, kind: alert.rule });
    row.querySelector(".alert-main").href = "/alerts/" + alert.alert_id;
    const badge = row.querySelector('[data-f="severity"]');
    badge.className = "badge sev-" + alert.severity;
    const text = { severity: alert.severity, summary: alert.summary, client: alert.client, site: alert.site,
                   hostname: alert.hostname, rule: alert.rule, status: status(alert) };
    for (const [field, value] of Object.entries(text)) row.querySelector(`[data-f="${field}"]`).textContent = value;
    const opened = document.createElement("time");
    opened.setAttribute("datetime", alert.opened_at);
    row.querySelector('[data-f="opened"]').replaceChildren(opened);
    localTimes(row);
    const ack = row.querySelector(".quick-ack");
    ack.action = "/alerts/" + alert.alert_id + "/acknowledge";
    ack.hidden = alert.state !== "open" || Boolean(alert.acknowledged_by);
  }

  function show(what, alert) {
    let row = list.querySelector(`li[data-alert-id="${alert.alert_id}"]`);
    if (!row && (!wanted(alert) || (list.dataset.state === "resolved" && alert.state !== "resolved"))) return;
    const isNew = !row;
    if (isNew) {
      row = template.content.firstElementChild.cloneNode(true);
      list.prepend(row);
    }
    fill(row, alert);
    row.classList.add("fresh");
    empty.hidden = true;
    const critical = alert.severity === "critical" && ["opened", "reopened", "changed"].includes(what);
    if (isNew || critical) announce.textContent = `${alert.severity} alert ${what}: ${alert.summary}`;
    if (critical && wanted(alert)) {
      if (sound.checked) beep();
      if (notify.checked && Notification.permission === "granted") {
        new Notification("Critical: " + alert.hostname, { body: alert.summary, tag: "alert-" + alert.alert_id });
      }
    }
  }

  function connect() {
    source = new EventSource("/api/v1/feed?after=" + encodeURIComponent(lastId));
    source.onopen = () => { live.textContent = "live"; live.className = "live ok"; };
    source.onerror = () => {
      live.textContent = "reconnecting…";
      live.className = "live";
      // CLOSED: the collector refused (e.g. logged out) rather than dropped; try again later from lastId.
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
    };
    // Malware the antivirus blocked: a line of information, not an alert.
    source.addEventListener("device.malware_blocked", (event) => {
      lastId = event.lastEventId || lastId;
      const data = JSON.parse(event.data);
      if ((filters.client && data.client !== filters.client) || (filters.site && data.site !== filters.site)) return;
      const item = document.createElement("li");
      item.className = "event sev-info";
      item.textContent = `${data.client} / ${data.site} / ${data.hostname}: ${data.summary}`;
      document.getElementById("blocked").prepend(item);
      document.querySelector("section.blocked-malware").hidden = false;
    });
    for (const what of ALERT_EVENTS) {
      source.addEventListener("alert." + what, (event) => {
        lastId = event.lastEventId || lastId;
        show(what, JSON.parse(event.data));
      });
    }
  }

  // Acknowledge from the list without leaving the page; the feed then shows the change.
  list.addEventListener("submit", async (event) => {
    const form = event.target.closest("form.quick-ack");
    if (!form) return;
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    const response = await fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" },
    });
    button.disabled = false;
    if (response.ok) {
      show("acknowledged", await response.json());
    } else {
      announce.textContent = "Not acknowledged: " + (await response.text());
      form.submit();  // let the server's page say why
    }
  });

  connect();
});
