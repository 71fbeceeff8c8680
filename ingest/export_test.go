package ingest

import "github.com/triage-dev/triage"

// Path is one way of decoding a format, for tests that compare the fast
// path with encoding/json's.
type Path struct {
	// Fast is the fast path alone, on a body that passed checkBody; ok
	// is false when it gives up.
	Fast func(d *Decoder, body []byte) (events []triage.Event, ok bool)
	// Strict is encoding/json's path alone, with checkBody.
	Strict func(body []byte) ([]triage.Event, error)
	// Public is what callers use: checkBody, the fast path, then the strict one.
	Public func(d *Decoder, body []byte) ([]triage.Event, error)
}

// Paths are the decoding paths of every format, by format name.
var Paths = map[string]Path{
	"webhook": {
		Fast: func(d *Decoder, body []byte) ([]triage.Event, bool) {
			s := d.scanner(body)
			return s.webhook()
		},
		Strict: withCheck(strictWebhook),
		Public: (*Decoder).Webhook,
	},
	"postable": {
		Fast: func(d *Decoder, body []byte) ([]triage.Event, bool) {
			s := d.scanner(body)
			return s.postableAlerts()
		},
		Strict: withCheck(strictPostableAlerts),
		Public: (*Decoder).PostableAlerts,
	},
	"events": {
		Fast: func(d *Decoder, body []byte) ([]triage.Event, bool) {
			s := d.scanner(body)
			evs, ok := s.events()
			for i := range evs {
				if evs[i].Source == "" {
					evs[i].Source = SourceAPI
				}
			}
			return evs, ok
		},
		Strict: withCheck(strictEvents),
		Public: (*Decoder).Events,
	},
	"kafka": {
		Fast: nil, // its fast path is the event's and the webhook's
		Strict: func(body []byte) ([]triage.Event, error) {
			return withCheck(func(b []byte) ([]triage.Event, error) {
				if err := kafkaShape(b); err != nil {
					return nil, err
				}
				return strictKafkaAlert(b)
			})(body)
		},
		Public: (*Decoder).KafkaAlert,
	},
}

// CheckBody is the check every body passes before any decoding.
func CheckBody(body []byte) error { return checkBody(body) }

func withCheck(f func([]byte) ([]triage.Event, error)) func([]byte) ([]triage.Event, error) {
	return func(body []byte) ([]triage.Event, error) {
		if err := checkBody(body); err != nil {
			return nil, err
		}
		return f(body)
	}
}
