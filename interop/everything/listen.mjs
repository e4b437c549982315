// Preloaded (node --import ./listen.mjs) before the reference "everything"
// MCP server, which calls app.listen(PORT) on every interface and prints
// no usable address. This
//   - binds its server to 127.0.0.1, so that the tests listen on loopback
//     only, and prints the address it got as a stdout line
//     {"listening":"127.0.0.1:<port>"}, so that PORT=0 works;
//   - prints each request's method and raw headers as a stdout line
//     {"request":{"method":"POST","rawHeaders":[name, value, ...]}}, so
//     that tests can check exactly what the server received.
import http from "node:http";
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  // listen(port[, callback]): put the host in.
  if ((typeof args[0] === "number" || typeof args[0] === "string") &&
      (args.length === 1 || typeof args[1] === "function")) {
    args.splice(1, 0, "127.0.0.1");
  }
  this.once("listening", () => {
    const a = this.address();
    process.stdout.write(JSON.stringify({ listening: `${a.address}:${a.port}` }) + "\n");
  });
  return listen.apply(this, args);
};

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, ...args) {
  if (event === "request") {
    const req = args[0];
    process.stdout.write(JSON.stringify({ request: { method: req.method, rawHeaders: req.rawHeaders } }) + "\n");
  }
  return emit.call(this, event, ...args);
};
