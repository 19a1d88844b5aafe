// bench/node_const.js - Node's bare `http` server returning the same JSON body
// as bench/mhd_const.c: what a seed service answers with no logic at all.
//   node bench/node_const.js [port]
'use strict';
const http = require('http');

const body = Buffer.from(
  '{"id":"00000002-0000-7000-8000-000000000001","title":"Bench ticket 1",' +
  '"price":50,"price_minor":5000,"currency":"USD",' +
  '"userId":"00000001-0000-7000-8000-000000000000","orderId":null,"locked":false,' +
  '"lockedUntil":null,"status":"listed","version":1,' +
  '"createdAt":"2023-11-14T21:13:20.000Z"}');
const port = Number(process.argv[2] || 8082);

http.createServer((req, res) => {
  req.resume(); // read a POST body, if any, before answering
  req.on('end', () => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    res.end(body);
  });
}).listen(port, '127.0.0.1', () => {
  process.stderr.write(`node_const: listening on 127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
