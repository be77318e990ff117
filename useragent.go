package bff

import "strings"

// maxUserAgent bounds how much of a User-Agent header is looked at.
const maxUserAgent = 512

// summarizeUserAgent names the browser and operating system of a User-Agent
// header in a few words ("Firefox on Linux"), for the user's list of
// sessions. Written by hand rather than with a parsing library: bff needs
// only the handful of families a person recognises in such a list, and
// keeps nothing else of the header.
func summarizeUserAgent(ua string) string {
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	browser := firstMatch(ua, []match{
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"},
		{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"CriOS/", "Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
		{"Safari/", "Safari"},
		{"curl/", "curl"},
	})
	os := firstMatch(ua, []match{
		{"iPhone", "iOS"}, {"iPad", "iPadOS"},
		{"Android", "Android"}, {"CrOS", "ChromeOS"},
		{"Windows", "Windows"}, {"Macintosh", "macOS"}, {"Mac OS X", "macOS"},
		{"Linux", "Linux"},
	})
	switch {
	case browser == "" && os == "":
		return "Unknown browser"
	case browser == "":
		return "A browser on " + os
	case os == "":
		return browser
	default:
		return browser + " on " + os
	}
}

type match struct{ token, name string }

// firstMatch returns the name of the first token found in ua, in the order
// given: the order matters, as Edge and Opera also claim to be Chrome, and
// Chrome to be Safari.
func firstMatch(ua string, ms []match) string {
	for _, m := range ms {
		if strings.Contains(ua, m.token) {
			return m.name
		}
	}
	return ""
}
