// The dashboard reloads itself while its box is ticked, and comes back where it was scrolled to.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("cronrunner-refresh");
    if (!box) return;
    const key = "cronrunner-dashboard-scroll";
    const saved = sessionStorage.getItem(key);
    if (saved !== null) {
        sessionStorage.removeItem(key);
        window.scrollTo(0, Number(saved));
    }
    box.checked = localStorage.getItem("cronrunner-refresh") !== "off";
    box.addEventListener("change", () => {
        localStorage.setItem("cronrunner-refresh", box.checked ? "on" : "off");
    });
    window.setInterval(() => {
        if (!box.checked) return;
        sessionStorage.setItem(key, String(window.scrollY));
        window.location.reload();
    }, Number(box.dataset.seconds) * 1000);
});
