// Live updates: seat counts and badges over the WebSocket (through the gateway at /ws), the
// "only N seats left" toast and browser notification, countdowns, and pages that follow a payment.
// Everything here is an enhancement: every page works without it.

const root = document.documentElement;
root.classList.add("js");
const text = JSON.parse(document.getElementById("page-text")?.textContent || "{}");
const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, k) => values[k] ?? "");

// Language and currency pickers send themselves when changed.
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.requestSubmit());
}

// On a phone the results come first: the filters fold away unless one needs attention.
const filters = document.querySelector(".filters-box");
if (filters && window.matchMedia("(max-width: 900px)").matches && !filters.querySelector(".field-error")) {
  filters.open = false;
}

// -- seat badges, with the thresholds of web/seats.py --
export function level(available, capacity) {
  if (available <= 0) return "sold-out";
  if (capacity <= 0) return "open";
  const share = available / capacity;
  if (share <= 0.10) return "last";
  if (share <= 0.20) return "limited";
  if (share <= 0.50) return "filling";
  return "open";
}

const LABELS = { "sold-out": "soldOut", last: "last", limited: "limited", filling: "filling", open: "open" };

function showSeats(tourId, date, available, capacity) {
  for (const holder of document.querySelectorAll(`[data-departure="${tourId}:${date}"]`)) {
    const cap = capacity ?? Number(holder.dataset.capacity);
    holder.dataset.available = String(available);
    const count = holder.querySelector(".seats-count");
    if (count) {
      count.textContent = available <= 0 ? text.soldOut
        : available === 1 ? text.oneSeatLeft : fill(text.seatsLeft, { n: available });
    }
    const badge = holder.querySelector("[data-badge]");
    if (badge) {
      const next = level(available, cap);
      badge.className = `badge seats seats-${next} flash-update`;
      badge.textContent = text[LABELS[next]];
    }
  }
}

// -- toasts and browser notifications --
function toast(message, href) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = document.createElement("p");
  item.className = "toast";
  item.setAttribute("role", "status");
  if (href) {
    const link = document.createElement("a");
    link.href = href;
    link.textContent = message;
    item.append(link);
  } else {
    item.textContent = message;
  }
  box.append(item);
  setTimeout(() => item.remove(), 8000);
}

function lowSeats(data) {
  const href = `/tours/${data.tourId}`;
  const template = data.availableSeats === 1 ? text.onlyOneLeft : text.onlyLeft;
  const message = `${data.tourTitle ? data.tourTitle + " — " : ""}${fill(template, {
    n: data.availableSeats, date: new Date(data.tourDate).toLocaleDateString(root.lang) })}`;
  toast(message, href);
  if ("Notification" in window && Notification.permission === "granted") {
    const note = new Notification(text.notifyTitle, { body: message, tag: `low-${data.tourId}-${data.tourDate}` });
    note.onclick = () => { window.focus(); location.href = href; };
  }
}

const notifyButton = document.querySelector(".notify-me");
if (notifyButton && "Notification" in window && Notification.permission === "default") {
  notifyButton.hidden = false;
  notifyButton.addEventListener("click", async () => {
    await Notification.requestPermission();
    notifyButton.hidden = true;
  });
}

// -- the WebSocket --
const state = document.getElementById("live-state");
function setState(name) {
  if (!state) return;
  state.dataset.state = name;
  state.querySelector(".live-label").textContent = text[name] || name;
}

// The payment page looks again at once when its tour's seats move (the booking confirmed turns
// held seats into booked ones), and otherwise at its own pace.
let lookNow = () => {};

const tourIds = [...new Set([...document.querySelectorAll("[data-tour-id]")].map((e) => e.dataset.tourId))];
const seen = new Set();
let retry = 1000;

function connect() {
  setState("connecting");
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  let pinger;
  socket.addEventListener("open", () => {
    retry = 1000;
    setState("live");
    if (tourIds.length) socket.send(JSON.stringify({ type: "subscribe", tourIds: tourIds.slice(0, 200) }));
    pinger = setInterval(() => socket.send(JSON.stringify({ type: "ping" })), 25000);
  });
  socket.addEventListener("message", (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame.eventId) {
      if (seen.has(frame.eventId)) return;
      seen.add(frame.eventId);
    }
    const data = frame.data || {};
    if (frame.type.startsWith("tour.availability.")) lookNow(data.tourId);
    if (frame.type === "tour.availability.changed") {
      showSeats(data.tourId, data.tourDate, data.availableSeats, data.capacity);
    } else if (frame.type === "tour.availability.low") {
      showSeats(data.tourId, data.tourDate, data.availableSeats, data.capacity);
      lowSeats(data);
    }
  });
  socket.addEventListener("close", () => {
    clearInterval(pinger);
    setState("offline");
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 30000);
  });
}
if ("WebSocket" in window) connect();

// -- countdowns of held seats --
for (const countdown of document.querySelectorAll(".countdown[data-seconds]")) {
  const ends = Date.now() + Number(countdown.dataset.seconds) * 1000;
  const tick = () => {
    const left = Math.max(0, Math.round((ends - Date.now()) / 1000));
    if (left === 0) { countdown.textContent = text.holdEnded; return; }
    const time = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    countdown.textContent = fill(text.timeLeft, { time });
    setTimeout(tick, 1000);
  };
  tick();
}

// -- a page that follows a payment until the booking is confirmed (or not) --
const follow = document.querySelector("[data-follow]");
if (follow && follow.dataset.follow) {
  const every = Number(follow.dataset.interval || 2) * 1000;
  let timer;
  const poll = async () => {
    clearTimeout(timer);
    try {
      const answer = await fetch(follow.dataset.follow, { headers: { Accept: "application/json" } });
      if (answer.ok) {
        const current = await answer.json();
        // Once the card was taken, only the booking's move ends the wait: a decline before it
        // may still be the latest payment record for a moment.
        const settled = current.status !== "pending" || (follow.dataset.cardTaken !== "yes"
          && current.payment && current.payment.status === "failed");
        if (settled) { location.reload(); return; }
      }
    } catch { /* the next look may do better */ }
    timer = setTimeout(poll, every);
  };
  lookNow = (tourId) => { if (tourId === follow.dataset.tourId) poll(); };
  timer = setTimeout(poll, every);
}
