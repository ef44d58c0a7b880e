#!/bin/sh
# nginx (Debian's nginx-light) as a TLS peer: one worker, the given
# certificate, TLS 1.2 and 1.3 as weft and node (nginx 1.22's default
# leaves 1.3 out), "Hello World!" for every request, keep-alive without a
# request limit; its own config, logs and temporary files under DIR, never
# the system's service.  usage: nginx.sh DIR CERT KEY PORT
set -eu
dir=$1 cert=$2 key=$3 port=$4
mkdir -p "$dir/tmp"
cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { default_type text/plain; return 200 "Hello World!"; }
  }
}
CONF
exec nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf"
