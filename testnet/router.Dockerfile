# IFS testnet router: a static busybox (Debian's busybox-static) in an empty
# image. It only forwards packets (docker-compose sets
# net.ipv4.ip_forward=1); scripts/testnet.sh installs its routes from the
# host with `nsenter -n ip route replace ...`, and busybox gives
# `docker exec` a shell and `ip` for looking around.
FROM scratch
COPY busybox /bin/busybox
ENTRYPOINT ["/bin/busybox"]
CMD ["sleep", "2147483647"]
