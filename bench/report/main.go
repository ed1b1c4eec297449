// Command report summarises the raw results of bench/throughput.sh: the median of
// each case, its ratio to the underlay, to the MTU ceiling and to upstream
// wireguard-go, the CPU cores its tunnel processes used, and the paired ratio
// wgnet/upstream with a bootstrap 95% interval. It prints a Markdown table, and
// with -doc and -svg rewrites the generated section of docs/benchmarks.md and
// draws the chart (an SVG written here, nothing fetched).
//
//	go run ./bench/report -in results.tsv [-doc docs/benchmarks.md -svg docs/benchmarks-throughput.svg]
//
// Input lines (tab-separated): case, streams, shape, rep, Gbit/s, bytes received,
// seconds, CPU seconds of the tunnel processes on both ends, TCP MSS. Lines that
// start with '#' carry the machine's description, TUN offloads and skipped cases.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Markers around the section of the doc this program owns.
const (
	beginMark = "<!-- bench/throughput.sh: generated, begin -->"
	endMark   = "<!-- bench/throughput.sh: generated, end -->"
)

// caseOrder is the order of the table rows and chart bars.
var caseOrder = []string{"veth", "wgnet", "upstream", "upsid", "debian", "openvpn", "tinc"}

var caseLabel = map[string]string{
	"veth":     "bare veth (underlay)",
	"wgnet":    "wgnet up (userspace)",
	"upstream": "upstream wireguard-go (bench/wggo-upstream)",
	"upsid":    "upstream wireguard-go under setsid",
	"debian":   "wg-quick + Debian wireguard-go",
	"openvpn":  "OpenVPN 2.6 (AES-256-GCM, DCO off)",
	"tinc":     "tinc 1.0 (default cipher)",
}

var caseColor = map[string]string{
	"veth": "#888888", "wgnet": "#1f77b4", "upstream": "#2ca02c", "upsid": "#8c564b",
	"debian": "#9467bd", "openvpn": "#ff7f0e", "tinc": "#d62728",
}

type run struct {
	c       string
	streams int
	shape   string
	rep     string
	gbps    float64
	bytes   float64
	secs    float64
	cpu     float64
	mss     int
}

type key struct {
	shape   string
	streams int
}

type input struct {
	runs    []run
	machine []string
	offload map[string]string
	skipped []string
	version []string
	notes   []string
}

func main() {
	in := flag.String("in", "", "raw results of bench/throughput.sh")
	doc := flag.String("doc", "", "rewrite the generated section of this Markdown file")
	svg := flag.String("svg", "", "write the chart here (with -doc)")
	flag.Parse()
	if err := mainErr(*in, *doc, *svg); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func mainErr(in, doc, svg string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	var md bytes.Buffer
	svgName := ""
	if svg != "" {
		svgName = filepath.Base(svg)
	}
	writeMarkdown(&md, data, svgName)
	os.Stdout.Write(md.Bytes())
	if svg != "" {
		if err := os.WriteFile(svg, chart(data), 0o644); err != nil {
			return err
		}
	}
	if doc != "" {
		return replaceSection(doc, md.Bytes())
	}
	return nil
}

func parse(r io.Reader) (*input, error) {
	d := &input{offload: map[string]string{}}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		switch f[0] {
		case "#machine":
			d.machine = f[1:]
			continue
		case "#offload":
			if len(f) >= 3 {
				d.offload[f[1]] = f[2]
			}
			continue
		case "#skipped":
			d.skipped = append(d.skipped, f[1:]...)
			continue
		case "#note":
			d.notes = append(d.notes, f[1:]...)
			continue
		case "#versions":
			d.version = f[1:]
			continue
		}
		if strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 9 {
			return nil, fmt.Errorf("line %d: %d fields, want 9", n, len(f))
		}
		var r run
		var err error
		r.c, r.shape, r.rep = f[0], f[2], f[3]
		num := func(s string) float64 {
			v, e := strconv.ParseFloat(s, 64)
			if e != nil && err == nil {
				err = fmt.Errorf("line %d: %q: %w", n, s, e)
			}
			return v
		}
		r.streams = int(num(f[1]))
		r.gbps, r.bytes, r.secs, r.cpu = num(f[4]), num(f[5]), num(f[6]), num(f[7])
		r.mss = int(num(f[8]))
		if err != nil {
			return nil, err
		}
		if r.rep == "profile" || math.IsNaN(r.gbps) {
			continue
		}
		d.runs = append(d.runs, r)
	}
	return d, sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// bootstrapMedian is the 95% percentile-bootstrap interval of the median of v,
// from 10,000 resamples with a fixed seed, so that a report is reproducible.
func bootstrapMedian(v []float64) (lo, hi float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 10000
	meds := make([]float64, n)
	s := make([]float64, len(v))
	for i := range meds {
		for j := range s {
			s[j] = v[rng.IntN(len(v))]
		}
		meds[i] = median(s)
	}
	slices.Sort(meds)
	return meds[n*25/1000], meds[n*975/1000-1]
}

// wireBytes is what one TCP segment of mss payload bytes (IPv4, TCP timestamps)
// costs on the underlay as tbf counts it (Ethernet header included), per tunnel.
func wireBytes(c string, mss int) float64 {
	inner := mss + 20 + 32 // IPv4 + TCP with timestamps
	const outer = 14 + 20 + 8
	switch c {
	case "veth":
		return float64(14 + inner)
	case "wgnet", "upstream", "debian":
		return float64(outer + 16 + inner + 16) // header, payload padded to 16 (1420 is), tag
	case "openvpn":
		return float64(outer + 4 + 4 + inner + 16) // opcode/peer-id, packet-id, payload, GCM tag
	case "tinc":
		// seqno and the Ethernet header are encrypted with the packet; Blowfish-CBC
		// pads to 8 bytes (always at least 1); a 4-byte HMAC-SHA1 follows.
		plain := 4 + 14 + inner
		return float64(outer + (plain/8+1)*8 + 4)
	}
	return math.NaN()
}

type row struct {
	c                string
	n                int
	med, min, max    float64
	toUnderlay       float64
	toCeiling        float64 // NaN unshaped
	toUpstream       float64
	cores            float64
	nsPerByte        float64
	pairedMed        float64 // wgnet only: median of per-repetition wgnet/upstream
	pairedLo, pairHi float64
	pairs            []float64
	costPairs        []float64 // wgnet only: per-repetition CPU per byte, wgnet/upstream
}

func rowsFor(d *input, k key) []row {
	by := map[string][]run{}
	for _, r := range d.runs {
		if r.shape == k.shape && r.streams == k.streams {
			by[r.c] = append(by[r.c], r)
		}
	}
	medOf := func(c string) float64 {
		var v []float64
		for _, r := range by[c] {
			v = append(v, r.gbps)
		}
		return median(v)
	}
	under, up := medOf("veth"), medOf("upstream")
	var rows []row
	for _, c := range caseOrder {
		rs := by[c]
		if len(rs) == 0 {
			continue
		}
		var g, cores, nspb, mss []float64
		for _, r := range rs {
			g = append(g, r.gbps)
			cores = append(cores, r.cpu/r.secs)
			if r.bytes > 0 {
				nspb = append(nspb, r.cpu*1e9/r.bytes)
			}
			if r.mss > 0 {
				mss = append(mss, float64(r.mss))
			}
		}
		w := row{c: c, n: len(rs), med: median(g), min: slices.Min(g), max: slices.Max(g)}
		w.toUnderlay = w.med / under
		w.toUpstream = w.med / up
		w.cores, w.nsPerByte = median(cores), median(nspb)
		w.toCeiling = math.NaN()
		if k.shape == "tbf" && len(mss) > 0 {
			m := int(median(mss))
			w.toCeiling = w.med / (1.0 * float64(m) / wireBytes(c, m))
		}
		if c == "wgnet" {
			ups := map[string]float64{}
			for _, r := range by["upstream"] {
				ups[r.rep] = r.gbps
			}
			upCost := map[string]float64{}
			for _, r := range by["upstream"] {
				if r.bytes > 0 {
					upCost[r.rep] = r.cpu / r.bytes
				}
			}
			for _, r := range rs {
				if u, ok := ups[r.rep]; ok && u > 0 {
					w.pairs = append(w.pairs, r.gbps/u)
				}
				if u, ok := upCost[r.rep]; ok && u > 0 && r.bytes > 0 {
					w.costPairs = append(w.costPairs, r.cpu/r.bytes/u)
				}
			}
			w.pairedMed = median(w.pairs)
			w.pairedLo, w.pairHi = bootstrapMedian(w.pairs)
		}
		rows = append(rows, w)
	}
	return rows
}

func keys(d *input) []key {
	var ks []key
	for _, r := range d.runs {
		k := key{r.shape, r.streams}
		if !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, func(a, b key) int {
		if a.shape != b.shape {
			if a.shape == "none" {
				return -1
			}
			return 1
		}
		return a.streams - b.streams
	})
	return ks
}

func shapeName(s string) string {
	if s == "tbf" {
		return "1 Gbit/s tbf underlay"
	}
	return "unshaped"
}

func ratio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func writeMarkdown(w io.Writer, d *input, svgName string) {
	fmt.Fprintf(w, "%s\n\n", beginMark)
	if len(d.machine) > 0 {
		fmt.Fprintf(w, "Machine: %s.\n", strings.Join(d.machine, ", "))
	}
	if len(d.version) > 0 {
		fmt.Fprintf(w, "Versions: %s.\n", strings.Join(d.version, ", "))
	}
	for _, c := range []string{"wgnet", "upstream"} {
		if o, ok := d.offload[c]; ok {
			fmt.Fprintf(w, "TUN offloads of %s's interface (ethtool -k): %s.\n", c, strings.ReplaceAll(o, ";", ", "))
		}
	}
	for _, n := range d.notes {
		fmt.Fprintf(w, "%s.\n", n)
	}
	if len(d.skipped) > 0 {
		fmt.Fprintf(w, "Skipped (could not be set up in this run): %s.\n", strings.Join(d.skipped, ", "))
	}
	fmt.Fprintln(w)
	for _, k := range keys(d) {
		rows := rowsFor(d, k)
		fmt.Fprintf(w, "**%s, %d stream(s)**\n\n", shapeName(k.shape), k.streams)
		fmt.Fprintln(w, "| case | runs | median Gbit/s | min–max | × underlay | × MTU ceiling | × upstream wg-go | tunnel CPU cores | CPU ns/byte |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, r := range rows {
			cores, nspb := fmt.Sprintf("%.2f", r.cores), fmt.Sprintf("%.2f", r.nsPerByte)
			if r.c == "veth" {
				cores, nspb = "–", "–"
			}
			fmt.Fprintf(w, "| %s | %d | %.2f | %.2f–%.2f | %s | %s | %s | %s | %s |\n",
				caseLabel[r.c], r.n, r.med, r.min, r.max, ratio(r.toUnderlay), ratio(r.toCeiling),
				ratio(r.toUpstream), cores, nspb)
		}
		for _, r := range rows {
			if r.c == "wgnet" && len(r.pairs) > 0 {
				fmt.Fprintf(w, "\nwgnet/upstream, paired by repetition (n=%d): median %.3f, bootstrap 95%% interval %.3f–%.3f; per run %s.\n",
					len(r.pairs), r.pairedMed, r.pairedLo, r.pairHi, fmtList(r.pairs))
				if len(r.costPairs) > 0 {
					lo, hi := bootstrapMedian(r.costPairs)
					fmt.Fprintf(w, "CPU per byte, wgnet/upstream, paired: median %.3f, bootstrap 95%% interval %.3f–%.3f.\n",
						median(r.costPairs), lo, hi)
				}
			}
		}
		fmt.Fprintln(w)
	}
	if svgName != "" {
		fmt.Fprintf(w, "![median Gbit/s per case, whiskers min–max](%s)\n\n", svgName)
	}
	fmt.Fprintf(w, "%s\n", endMark)
}

func fmtList(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, " ")
}

// replaceSection swaps the generated section of the doc at path for md, or
// appends md when the doc has none yet; written atomically.
func replaceSection(path string, md []byte) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var out []byte
	i, j := bytes.Index(old, []byte(beginMark)), bytes.Index(old, []byte(endMark))
	if i >= 0 && j > i {
		out = append(append(append(out, old[:i]...), bytes.TrimRight(md, "\n")...), old[j+len(endMark):]...)
	} else {
		out = append(append(old, '\n'), md...)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".benchmarks-*.md")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// chart draws one panel per (shape, streams), each on its own scale: a bar per
// case at its median, a whisker from min to max. The bare veth is clipped (and
// marked) when it would flatten the tunnels.
func chart(d *input) []byte {
	ks := keys(d)
	const panelW, panelH, top, left, bottom = 310, 260, 60, 20, 90
	width := left + len(ks)*panelW + 20
	height := top + panelH + bottom
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="13">Throughput through each tunnel, iperf3 A→B: median of runs, whiskers min–max (Gbit/s)</text>`+"\n", left)
	for pi, k := range ks {
		rows := rowsFor(d, k)
		tunnels, veth := 0.0, 0.0
		for _, r := range rows {
			if r.c == "veth" {
				veth = r.max
			} else {
				tunnels = math.Max(tunnels, r.max)
			}
		}
		maxV := tunnels
		if veth < 2*tunnels || tunnels == 0 {
			maxV = math.Max(maxV, veth)
		}
		maxV = niceCeil(maxV * 1.08)
		y := func(v float64) float64 { return top + panelH - math.Min(v, maxV)/maxV*panelH }
		x0 := float64(left + pi*panelW + 35)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-weight="bold">%s, %d stream(s)</text>`+"\n", x0, top-22, shapeName(k.shape), k.streams)
		for i := 0; i <= 4; i++ {
			v := maxV * float64(i) / 4
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, x0+panelW-45, y(v), y(v))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" font-size="9">%.3g</text>`+"\n", x0-3, y(v)+3, v)
		}
		bw := float64(panelW-45) / float64(max(len(rows), 1))
		for i, r := range rows {
			x := x0 + float64(i)*bw
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %.2f Gbit/s</title></rect>`+"\n",
				x+2, y(r.med), bw-4, y(0)-y(r.med), caseColor[r.c], caseLabel[r.c], r.med)
			cx := x + bw/2
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black"/>`+"\n", cx, cx, y(r.min), y(r.max))
			if r.max > maxV { // clipped: the value inside the bar's top
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9" fill="white">%.2f</text>`+"\n", cx, y(maxV)+12, r.med)
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9" fill="white">(off scale)</text>`+"\n", cx, y(maxV)+23)
			} else {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%.2f</text>`+"\n", cx, y(r.max)-3, r.med)
			}
			fmt.Fprintf(&b, `<text transform="translate(%.1f,%.1f) rotate(45)" font-size="9">%s</text>`+"\n", cx-3, y(0)+10, r.c)
		}
	}
	// Legend.
	lx := left + 35
	present := map[string]bool{}
	for _, r := range d.runs {
		present[r.c] = true
	}
	for _, c := range caseOrder {
		if !present[c] {
			continue
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			lx, height-16, caseColor[c], lx+13, height-7, caseLabel[c])
		lx += 13 + 6*len(caseLabel[c]) + 12
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, or a multiple of those
// quarters, so that the axis' four steps read well.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
