// Test-only preload: an HTTP server that calls listen(port) binds 127.0.0.1 instead of every
// interface, and reports its real port on stderr as "PORT <n>" (port 0 picks a free one).
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    if (typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
    this.once("listening", () => process.stderr.write(`PORT ${this.address().port}\n`));
  }
  return listen.apply(this, args);
};
