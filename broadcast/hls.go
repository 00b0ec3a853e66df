package broadcast

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// HLS and RTMP both need H.264 and AAC, so ffmpeg transcodes the programme (VP8 and the mixed
// Opus tracks) for them, with a keyframe at every segment boundary.

// TranscodeConfig is what HLS and RTMP share.
type TranscodeConfig struct {
	// FFmpeg is the ffmpeg program ("ffmpeg" from PATH when empty).
	FFmpeg string
	// Height of the picture (360 when 0); the width follows at 16:9, the camera letterboxed.
	Height int
	// VideoBitrate and AudioBitrate in kb/s (800 and 96 when 0).
	VideoBitrate, AudioBitrate int
	// FrameRate of the output (25 when 0).
	FrameRate int
	// Preset is x264's speed preset ("veryfast" when empty).
	Preset string
}

func (c TranscodeConfig) withDefaults() TranscodeConfig {
	SetDefault(&c.FFmpeg, "ffmpeg")
	SetDefault(&c.Height, 360)
	SetDefault(&c.VideoBitrate, 800)
	SetDefault(&c.AudioBitrate, 96)
	SetDefault(&c.FrameRate, 25)
	SetDefault(&c.Preset, "veryfast")
	return c
}

// transcodeArgs are ffmpeg's input and encoding arguments, up to the output format. The
// programme's resolution changes with its source (the slate, each camera): the picture is
// scaled and padded to one size, the interpreter inset in its corner (pictureInPicture), and a
// keyframe forced every keyEvery seconds. The SDP holds the picture, the interpreter, then
// audioTracks audio tracks.
func transcodeArgs(c TranscodeConfig, sdp string, audioTracks int, keyEvery int) []string {
	w, h := pictureSize(c.Height)
	return []string{
		"-hide_banner", "-nostats", "-nostdin", "-loglevel", "warning",
		// Probe at most 2 s of media: the SDP gives every parameter but the picture size,
		// which the first keyframe gives (the slate's are 200 ms apart, cameras' 2 s).
		"-analyzeduration", "2000000",
		"-protocol_whitelist", "file,udp,rtp", "-i", sdp,
		"-filter_complex", programmePicture(w, h, c.FrameRate, "pic") + ";" + audioMix(audioTracks),
		"-map", "[pic]", "-map", "[mix]",
		"-c:v", "libx264", "-preset", c.Preset, "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-b:v", fmt.Sprintf("%dk", c.VideoBitrate), "-maxrate", fmt.Sprintf("%dk", c.VideoBitrate*3/2),
		"-bufsize", fmt.Sprintf("%dk", c.VideoBitrate*2),
		"-g", strconv.Itoa(c.FrameRate * keyEvery), "-keyint_min", strconv.Itoa(c.FrameRate * keyEvery),
		"-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%d)", keyEvery),
		"-c:a", "aac", "-b:a", fmt.Sprintf("%dk", c.AudioBitrate), "-ar", "48000", "-ac", "2",
	}
}

// programmePicture is the filter making the SDP's two video streams one picture of w×h at fps
// into label out: the main picture scaled and letterboxed to that size (the programme's changes
// with its source: the slate, each camera), the interpreter inset in its corner. The frame rate
// is set first, so that a 30 fps camera's surplus pictures are dropped before being scaled.
func programmePicture(w, h, fps int, out string) string {
	return fmt.Sprintf("[0:v:0]fps=%d,scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,setsar=1[main];%s",
		fps, w, h, w, h, pictureInPicture("main", out, w, h))
}

// pictureSize is the 16:9 picture of about height lines, both even (encoders want them so).
func pictureSize(height int) (w, h int) {
	h = height &^ 1
	return (h*16/9 + 1) &^ 1, h
}

// pictureInPicture is the filter insetting the interpreter (the SDP's second video stream) in
// the bottom-right corner of the main picture (labelled main, w×h), a quarter of its width, into
// label out. Sign language must stay readable, hence no smaller. Without an interpreter the
// programme sends a blank narrower than pipMinWidth, which the overlay places off the picture:
// ffmpeg rebuilds the filters when the interpreter's picture size changes, so the same graph
// serves both.
func pictureInPicture(main, out string, w, h int) string {
	pw := (w / 4) &^ 1
	margin := (h / 36) &^ 1
	return fmt.Sprintf("[0:v:1]scale=w='if(lt(iw,%d),iw,%d)':h=-2,setsar=1[pip];"+
		"[%s][pip]overlay=x='if(lt(w,%d),W,W-w-%d)':y='H-h-%d'[%s]",
		pipMinWidth, pw, main, pipMinWidth, margin, margin, out)
}

// publicOutputs are the tracks ffmpeg reads for HLS and RTMP: every one, the interpreter
// second.
func (p *Programme) publicOutputs() []Output { return p.Outputs() }

// HLSConfig sets up the HLS output.
type HLSConfig struct {
	TranscodeConfig
	// Dir holds one folder per room with its playlist and segments.
	Dir string
	// SegmentSeconds is the length of a segment (2 when 0), ListSize how many the playlist
	// names (6 when 0); older segments are deleted.
	SegmentSeconds, ListSize int
}

// HLS is a running HLS output.
type HLS struct {
	dir  string
	stop func()
}

// Playlist is the name of the master playlist in the room's HLS folder: the programme's stream
// (MediaPlaylist) and its captions (CaptionsPlaylist, hlscaptions.go).
const Playlist = "index.m3u8"

// StartHLS makes the programme into an HLS stream in cfg.Dir/{room}/index.m3u8, with the
// captions as a WebVTT subtitles rendition, until the programme stops.
func (p *Programme) StartHLS(cfg HLSConfig) (*HLS, error) {
	if cfg.Dir == "" {
		return nil, errors.New("broadcast: HLS: no folder configured")
	}
	SetDefault(&cfg.SegmentSeconds, 2)
	SetDefault(&cfg.ListSize, 6)
	tc := cfg.TranscodeConfig.withDefaults()
	dir := filepath.Join(cfg.Dir, safeName(p.room))
	// Segments of an earlier run would be served as if they were this one's.
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("broadcast: HLS: clear %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("broadcast: HLS folder %s: %w", dir, err)
	}
	outputs := p.publicOutputs()
	h := &HLS{dir: dir}
	subs := newHLSCaptions(dir, p.cfg.Delay, masterPlaylist(tc, p.cfg.CaptionsLanguage, p.cfg.CaptionsName), p.log)
	removeCaptions := p.captions.add(subs.caption)
	h.stop = p.startEgress(&egress{
		name:        "hls",
		kind:        EgressHLS,
		target:      filepath.Join(dir, Playlist),
		outputs:     outputs,
		ffmpeg:      tc.FFmpeg,
		firstPacket: subs.flowing,
		args: func(sdp string, attempt int) ([]string, error) {
			subs.starting(attempt)
			args := transcodeArgs(tc, sdp, len(outputs)-2, cfg.SegmentSeconds)
			return append(args,
				"-f", "hls",
				"-hls_time", strconv.Itoa(cfg.SegmentSeconds),
				"-hls_list_size", strconv.Itoa(cfg.ListSize),
				"-hls_flags", "delete_segments+independent_segments+discont_start",
				"-hls_segment_filename", filepath.Join(dir, fmt.Sprintf("r%d-%%06d.ts", attempt)),
				"-y", filepath.Join(dir, MediaPlaylist)), nil
		},
	}, func() {
		removeCaptions()
		subs.finish()
	})
	p.log.Info("HLS started", "playlist", filepath.Join(dir, Playlist))
	return h, nil
}

// Dir is the folder of the playlist and segments.
func (h *HLS) Dir() string { return h.dir }

// Stop ends the HLS output (ffmpeg writes the end of the playlist).
func (h *HLS) Stop() { h.stop() }

// hlsFile matches the names the HLS output writes: nothing else is served from its folder.
var hlsFile = regexp.MustCompile(`^(index\.m3u8|video\.m3u8|captions\.m3u8|r[0-9]+-[0-9]+\.(ts|vtt))$`)

// HLSFile returns the path of a file of the HLS output, or false for a name it does not write.
func (h *HLS) HLSFile(name string) (string, bool) {
	if !hlsFile.MatchString(name) {
		return "", false
	}
	return filepath.Join(h.dir, name), true
}

// HLSContentType is the media type of an HLS file by its name.
func HLSContentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".m3u8"):
		return "application/vnd.apple.mpegurl"
	case strings.HasSuffix(name, ".vtt"):
		return "text/vtt; charset=utf-8"
	}
	return "video/mp2t"
}

// RTMPConfig sets up the push to a streaming platform.
type RTMPConfig struct {
	TranscodeConfig
	// URL is where to push, rtmp://host/app/key (or rtmps://).
	URL string
}

// StartRTMP pushes the programme to cfg.URL until the programme stops, reconnecting (through
// a new ffmpeg) when the platform drops the connection.
func (p *Programme) StartRTMP(cfg RTMPConfig) (stop func(), err error) {
	if !strings.HasPrefix(cfg.URL, "rtmp://") && !strings.HasPrefix(cfg.URL, "rtmps://") {
		return nil, fmt.Errorf("broadcast: RTMP URL %q must start with rtmp:// or rtmps://", redactURL(cfg.URL))
	}
	tc := cfg.TranscodeConfig.withDefaults()
	outputs := p.publicOutputs()
	stop = p.startEgress(&egress{
		name:    "rtmp",
		kind:    EgressRTMP,
		target:  redactURL(cfg.URL),
		outputs: outputs,
		ffmpeg:  tc.FFmpeg,
		secret:  cfg.URL[strings.LastIndex(cfg.URL, "/")+1:],
		args: func(sdp string, attempt int) ([]string, error) {
			args := transcodeArgs(tc, sdp, len(outputs)-2, 2)
			return append(args, "-f", "flv", cfg.URL), nil
		},
	}, nil)
	p.log.Info("RTMP push started", "url", redactURL(cfg.URL))
	return stop, nil
}

// redactURL hides the stream key (the last path element) of an RTMP URL in logs.
func redactURL(u string) string {
	if i := strings.LastIndex(u, "/"); i > len("rtmps://") {
		return u[:i+1] + "…"
	}
	return u
}
