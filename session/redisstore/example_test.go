package redisstore_test

import (
	"context"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/gobff/bff/session/redisstore"
)

// Three bff instances share their sessions through a Sentinel-managed
// Redis, under keys of their own.
func ExampleOpen() {
	store, err := redisstore.Open(context.Background(),
		"redis-sentinel://:s3cret@sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/sessions?prefix=shop:")
	if err != nil {
		log.Fatal(err) // the password is masked in the message
	}
	defer store.Close()
}

// A client configured in code, here for a cluster; the store leaves it open.
func ExampleNew() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"redis-1:6379", "redis-2:6379", "redis-3:6379"},
	})
	defer client.Close()
	store := redisstore.New(client, redisstore.WithPrefix("shop:"))
	defer store.Close()
}
