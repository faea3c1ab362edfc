#!/usr/bin/env bash
# Installs the real servers the integration tests drive: HAProxy, NGINX, Apache httpd, OpenSSH server (and socat
# for poking sockets by hand), and the AWS CLI v2 the AWS ELB provider runs. Debian packages; nothing is started here — the tests start their own on loopback.
set -euo pipefail
need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
# Git over SSH through NGINX needs its stream (TCP) module, a separate Debian package.
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
[ -x /usr/sbin/apache2 ] || need+=(apache2)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v socat >/dev/null 2>&1 || need+=(socat)
# Node tests: .zip distributions are built with zip and extracted on the "node" with unzip.
command -v zip >/dev/null 2>&1 || need+=(zip)
command -v unzip >/dev/null 2>&1 || need+=(unzip)
# AWS ELB tests drive the AWS CLI v2 against a stub; Debian's is /usr/bin/aws (a pip-installed v1 elsewhere on PATH
# does not count: the provider refuses version 1).
[ -x /usr/bin/aws ] || need+=(awscli)
if [ ${#need[@]} -eq 0 ]; then
  echo "test servers: already installed"
  exit 0
fi
echo "test servers: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's postinst may start daemons where an init system runs; the tests want none of them on the default ports.
for svc in haproxy nginx apache2 ssh; do service "$svc" stop >/dev/null 2>&1 || true; done
echo "test servers: installed"
