#!/bin/sh
# One HTTP exchange for the director tests, run by `socat TCP-LISTEN:8080,fork EXEC:…` per
# connection: http-server.sh NAME MODEDIR. GET /health/TAG answers by the mode in
# MODEDIR/NAME-TAG ('up' when missing): 'up' 200, 'down' 503, 'flap' alternating 200 and 503.
# GET /hold answers "start NAME" and keeps the connection open until the client closes it.
# Anything else: 200 with NAME. Shell builtins only on the check path: under emulation every
# fork costs tens of milliseconds.
name=$1 dir=$2
cr=''
read -r method path proto
while read -r line; do
  [ "${line%"$cr"}" = "" ] && break
done
reply() {  # status body
  printf 'HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' "$1" "${#2}" "$2"
}
case "$path" in
  /health/*)
    tag=${path#/health/}
    mode=up
    [ -f "$dir/$name-$tag" ] && read -r mode < "$dir/$name-$tag"
    if [ "$mode" = flap ]; then
      flip=0
      [ -f "$dir/$name-$tag.flip" ] && read -r flip < "$dir/$name-$tag.flip"
      if [ "$flip" = 1 ]; then echo 0 > "$dir/$name-$tag.flip"; mode=down; else echo 1 > "$dir/$name-$tag.flip"; mode=up; fi
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
