#!/bin/sh
# One HTTP exchange for the director tests, run by `socat TCP-LISTEN:8080,fork SYSTEM:…` per
# connection: http-server.sh NAME MODEDIR. GET /health/TAG answers by the mode in
# MODEDIR/NAME-TAG ('up' when missing): 'up' 200, 'down' 503, 'flap' alternating 200 and 503.
# GET /hold answers "start NAME" and keeps the connection open until the client closes it.
# Anything else: 200 with NAME.
name=$1 dir=$2
read -r method path proto
while read -r line; do
  [ "$(printf '%s' "$line" | tr -d '\r')" = "" ] && break
done
reply() {  # status body
  printf 'HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' "$1" "${#2}" "$2"
}
case "$path" in
  /health/*)
    tag=${path#/health/}
    mode=$(cat "$dir/$name-$tag" 2>/dev/null || echo up)
    if [ "$mode" = flap ]; then
      if [ -e "$dir/$name-$tag.flip" ]; then rm -f "$dir/$name-$tag.flip"; mode=down; else : > "$dir/$name-$tag.flip"; mode=up; fi
    fi
    if [ "$mode" = up ]; then reply '200 OK' "$name up"; else reply '503 Service Unavailable' "$name $mode"; fi
    ;;
  /hold)
    printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstart %s\n' "$name"
    # Until the client closes: socat then ends this script.
    cat > /dev/null
    ;;
  *)
    reply '200 OK' "$name"
    ;;
esac
