package main

import (
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/gorilla/websocket"
	_ "github.com/livekit/protocol/livekit"
	_ "github.com/livekit/server-sdk-go/v2"
	_ "github.com/pion/webrtc/v4"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "gopkg.in/yaml.v3"
)

func main() {}
