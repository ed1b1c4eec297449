package controller

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wgnet/wgnet/internal/store"
)

// collector reads the gauges from the store at each scrape (one listing of
// the networks, with their host counts), so that every controller on one
// database reports the same numbers.
type collector struct {
	s   store.Store
	log *slog.Logger
}

var (
	descNetworks = prometheus.NewDesc("wgnet_controller_networks", "Networks in the store.", nil, nil)
	descHosts    = prometheus.NewDesc("wgnet_controller_hosts", "Hosts of a network.", []string{"network"}, nil)
	descRevision = prometheus.NewDesc("wgnet_controller_revision", "A network's revision.", []string{"network"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descNetworks
	ch <- descHosts
	ch <- descRevision
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ns, err := c.s.Networks(ctx)
	if err != nil {
		c.log.Error("metrics", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descNetworks, prometheus.GaugeValue, float64(len(ns)))
	for _, n := range ns {
		// The count is kept by the store in each change's transaction: one
		// query per scrape whatever the size of the networks.
		ch <- prometheus.MustNewConstMetric(descHosts, prometheus.GaugeValue, float64(n.Hosts), n.Name)
		ch <- prometheus.MustNewConstMetric(descRevision, prometheus.GaugeValue, float64(n.Revision), n.Name)
	}
}
