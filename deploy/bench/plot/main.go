// Command plot draws the offered-load sweep of deploy/bench/run.sh as a PNG:
// achieved throughput (left axis, linear) and p99 latency (right axis,
// logarithmic) against offered load, one pair of polylines per target. It
// uses only the standard library, with a small built-in bitmap font.
//
//	plot -in sweep.csv -out throughput-latency.png
//
// The CSV has a header and the columns target, offered_eps, achieved_eps,
// p50_ms, p99_ms (more columns are ignored).
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

func main() {
	in := flag.String("in", "sweep.csv", "sweep CSV written by deploy/bench/run.sh")
	out := flag.String("out", "throughput-latency.png", "PNG to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintf(os.Stderr, "plot: %v\n", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	series, err := readSweep(f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", in, err)
	}
	img := render(series)
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := png.Encode(w, img); err != nil {
		w.Close()
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return w.Close()
}

// point is one step of the sweep.
type point struct{ offered, achieved, p99 float64 }

// target is one daemon's sweep, in order of offered load.
type target struct {
	name   string
	points []point
}

func readSweep(r io.Reader) ([]target, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) < 2 {
		return nil, errors.New("no data rows")
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[strings.TrimSpace(h)] = i
	}
	for _, c := range []string{"target", "offered_eps", "achieved_eps", "p99_ms"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("no column %q", c)
		}
	}
	var order []string
	by := map[string]*target{}
	for i, row := range rows[1:] {
		num := func(c string) (float64, error) {
			v, err := strconv.ParseFloat(strings.TrimSpace(row[col[c]]), 64)
			if err != nil {
				return 0, fmt.Errorf("line %d: %s: %w", i+2, c, err)
			}
			return v, nil
		}
		var p point
		if p.offered, err = num("offered_eps"); err != nil {
			return nil, err
		}
		if p.achieved, err = num("achieved_eps"); err != nil {
			return nil, err
		}
		if p.p99, err = num("p99_ms"); err != nil {
			return nil, err
		}
		name := row[col["target"]]
		if by[name] == nil {
			by[name] = &target{name: name}
			order = append(order, name)
		}
		by[name].points = append(by[name].points, p)
	}
	out := make([]target, 0, len(order))
	for _, n := range order {
		t := by[n]
		sort.Slice(t.points, func(i, j int) bool { return t.points[i].offered < t.points[j].offered })
		out = append(out, *t)
	}
	return out, nil
}

const (
	width, height = 960, 600
	left, right   = 100, 100
	top, bottom   = 70, 110
	scale         = 2 // font pixels per glyph pixel
)

var (
	white     = color.RGBA{255, 255, 255, 255}
	black     = color.RGBA{30, 30, 30, 255}
	grid      = color.RGBA{225, 225, 225, 255}
	faint     = color.RGBA{170, 170, 170, 255}
	targetRed = color.RGBA{200, 40, 40, 255}
	// throughput and latency colours of the first, second, ... target.
	throughputColours = []color.RGBA{{31, 119, 180, 255}, {44, 160, 44, 255}, {148, 103, 189, 255}}
	latencyColours    = []color.RGBA{{255, 127, 14, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}}
)

func render(series []target) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)
	x0, x1, y0, y1 := left, width-right, height-bottom, top

	maxX, maxY := 0.0, 0.0
	minL, maxL := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.points {
			maxX = math.Max(maxX, p.offered)
			maxY = math.Max(maxY, math.Max(p.achieved, p.offered))
			if p.p99 > 0 {
				minL, maxL = math.Min(minL, p.p99), math.Max(maxL, p.p99)
			}
		}
	}
	xStep := niceStep(maxX / 5)
	xMax := math.Ceil(maxX/xStep) * xStep
	yStep := niceStep(maxY / 5)
	yMax := math.Ceil(maxY/yStep) * yStep
	if math.IsInf(minL, 1) {
		minL, maxL = 1, 100
	}
	minL = math.Min(minL, 50) // keep the 50 ms line in view
	maxL = math.Max(maxL, 50)
	lo := math.Floor(math.Log10(minL))
	hi := math.Ceil(math.Log10(maxL))
	if hi <= lo {
		hi = lo + 1
	}
	px := func(v float64) int { return x0 + int(math.Round(v/xMax*float64(x1-x0))) }
	pyT := func(v float64) int { return y0 - int(math.Round(v/yMax*float64(y0-y1))) }
	pyL := func(ms float64) int {
		return y0 - int(math.Round((math.Log10(ms)-lo)/(hi-lo)*float64(y0-y1)))
	}

	// Gridlines and tick labels: x and left y linear, right y decades.
	for v := 0.0; v <= xMax+xStep/2; v += xStep {
		x := px(v)
		line(img, x, y0, x, y1, grid, 1)
		label := short(v)
		text(img, x-textWidth(label)/2, y0+10, label, black)
	}
	for v := 0.0; v <= yMax+yStep/2; v += yStep {
		y := pyT(v)
		line(img, x0, y, x1, y, grid, 1)
		label := short(v)
		text(img, x0-10-textWidth(label), y-glyphH*scale/2, label, throughputColours[0])
	}
	for e := lo; e <= hi; e++ {
		ms := math.Pow(10, e)
		y := pyL(ms)
		line(img, x1-6, y, x1, y, black, 1)
		label := short(ms)
		text(img, x1+10, y-glyphH*scale/2, label, latencyColours[0])
	}
	// Axes, the ideal (achieved = offered) and the 50 ms target.
	line(img, x0, y0, x1, y0, black, 2)
	line(img, x0, y0, x0, y1, black, 2)
	line(img, x1, y0, x1, y1, black, 2)
	dashed(img, px(0), pyT(0), px(math.Min(xMax, yMax)), pyT(math.Min(xMax, yMax)), faint)
	y50 := pyL(50)
	dashed(img, x0, y50, x1, y50, targetRed)
	text(img, x1-10-textWidth("P99 TARGET 50 MS"), y50-glyphH*scale-4, "P99 TARGET 50 MS", targetRed)

	for i, s := range series {
		tc := throughputColours[i%len(throughputColours)]
		lc := latencyColours[i%len(latencyColours)]
		var tp, lp []image.Point
		for _, p := range s.points {
			tp = append(tp, image.Pt(px(p.offered), pyT(p.achieved)))
			if p.p99 > 0 {
				lp = append(lp, image.Pt(px(p.offered), pyL(p.p99)))
			}
		}
		polyline(img, tp, tc)
		polyline(img, lp, lc)
		// Legend, two rows per target under the x axis title.
		ly := height - 52
		lx := x0 + i*(x1-x0)/max(len(series), 1)
		line(img, lx, ly+6, lx+24, ly+6, tc, 3)
		text(img, lx+32, ly, strings.ToUpper(s.name)+" EVENTS/S", tc)
		line(img, lx, ly+30, lx+24, ly+30, lc, 3)
		text(img, lx+32, ly+24, strings.ToUpper(s.name)+" P99 MS", lc)
	}

	text(img, (x0+x1-textWidth("OFFERED LOAD EVENTS/S"))/2, y0+36, "OFFERED LOAD EVENTS/S", black)
	text(img, x0-70, top-40, "ACHIEVED EVENTS/S", throughputColours[0])
	text(img, x1+70-textWidth("P99 MS LOG"), top-40, "P99 MS LOG", latencyColours[0])
	return img
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// short formats a tick value: 15000 → 15k, 2500 → 2.5k, 0.1 → 0.1.
func short(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "m"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}

func polyline(img *image.RGBA, pts []image.Point, c color.RGBA) {
	for i := 1; i < len(pts); i++ {
		line(img, pts[i-1].X, pts[i-1].Y, pts[i].X, pts[i].Y, c, 3)
	}
	for _, p := range pts {
		fill(img, image.Rect(p.X-4, p.Y-4, p.X+5, p.Y+5), c)
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r.Intersect(img.Bounds()), &image.Uniform{c}, image.Point{}, draw.Src)
}

// line draws a straight line (Bresenham) of the given thickness.
func line(img *image.RGBA, xa, ya, xb, yb int, c color.RGBA, thick int) {
	plotLine(xa, ya, xb, yb, func(x, y int) {
		fill(img, image.Rect(x-thick/2, y-thick/2, x-thick/2+thick, y-thick/2+thick), c)
	})
}

func dashed(img *image.RGBA, xa, ya, xb, yb int, c color.RGBA) {
	n := 0
	plotLine(xa, ya, xb, yb, func(x, y int) {
		if n%12 < 7 {
			fill(img, image.Rect(x, y, x+2, y+2), c)
		}
		n++
	})
}

func plotLine(xa, ya, xb, yb int, set func(x, y int)) {
	dx, dy := abs(xb-xa), -abs(yb-ya)
	sx, sy := sign(xb-xa), sign(yb-ya)
	e := dx + dy
	for {
		set(xa, ya)
		if xa == xb && ya == yb {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			xa += sx
		} else {
			e += dx
			ya += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// The font: 5×7 glyphs, one string per row, '#' for a set pixel.
const glyphW, glyphH = 5, 7

var font = map[rune][glyphH]string{
	'0': {" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "},
	'1': {"  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "},
	'2': {" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"},
	'3': {"#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "},
	'4': {"   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "},
	'5': {"#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "},
	'6': {"  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "},
	'7': {"#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "},
	'8': {" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "},
	'9': {" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "},
	'.': {"     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "},
	'-': {"     ", "     ", "     ", "#####", "     ", "     ", "     "},
	'/': {"     ", "    #", "   # ", "  #  ", " #   ", "#    ", "     "},
	'%': {"##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##"},
	'k': {"#    ", "#    ", "#  # ", "# #  ", "##   ", "# #  ", "#  # "},
	'm': {"     ", "     ", "## # ", "# # #", "# # #", "#   #", "#   #"},
	's': {"     ", "     ", " ### ", "#    ", " ### ", "    #", "#### "},
	'A': {" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"},
	'C': {" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "},
	'D': {"#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "},
	'E': {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"},
	'F': {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "},
	'G': {" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"},
	'H': {"#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"},
	'I': {" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "},
	'K': {"#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"},
	'L': {"#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"},
	'M': {"#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"},
	'N': {"#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"},
	'O': {" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "},
	'P': {"#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "},
	'R': {"#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"},
	'S': {" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "},
	'T': {"#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "},
	'U': {"#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "},
	'V': {"#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "},
	'Y': {"#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "},
}

const advance = (glyphW + 1) * scale

func textWidth(s string) int { return len([]rune(s))*advance - scale }

// text draws s with its top-left corner at (x, y). Characters the font does
// not have are drawn as blanks.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		if g, ok := font[r]; ok {
			for row, bits := range g {
				for col, b := range bits {
					if b == '#' {
						fill(img, image.Rect(x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale), c)
					}
				}
			}
		}
		x += advance
	}
}
