'use strict';
// HTTPS/1.1 keep-alive "hello world" on node's https module, with the
// certificate the weft server uses.  usage: node https_node.js CERT KEY PORT
const fs = require('fs');
const https = require('https');
const [cert, key, port] = process.argv.slice(2);
https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), noDelay: true },
  (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 12 });
    res.end('Hello World!');
  }).listen(Number(port), '127.0.0.1');
