// Package jirafake is an in-process fake of Jira's REST API v2, faithful enough to test a Jira
// connector against without a real Jira. A *Server is an http.Handler; tests wrap it in
// httptest.NewServer and point the connector (or github.com/andygrunwald/go-jira) at its URL.
//
// What it models, after Atlassian's documentation of Jira Cloud and Jira Data Center:
//
//   - Authentication: Cloud takes HTTP Basic with email:API token, Data Center takes
//     "Authorization: Bearer <personal access token>" (and Basic username:token). Anything else is
//     401 with Jira's error body.
//   - Issues: create (with entity properties set atomically, as Cloud documents), get with
//     fields/expand/properties, edit with "fields" and "update" operations, assign, comments,
//     workflow transitions (a Jira Software simplified workflow or a Jira Service Management one),
//     resolution set and cleared by done-category statuses, entity properties, a changelog.
//     Validation errors, status codes and error bodies ({"errorMessages":[...],"errors":{...}}) use
//     Jira's wording where Atlassian documents it.
//   - Search: Data Center's GET/POST /search (startAt/total) and Cloud's GET/POST /search/jql
//     (nextPageToken/isLast, only issue ids unless fields are asked for, unbounded JQL refused,
//     reconcileIssues for read-after-write). On Cloud the removed /search answers 410 Gone; on Data
//     Center /search/jql does not exist (404). Search is eventually consistent like Jira Cloud's
//     index: a change becomes visible to JQL only Options.IndexDelay after it happened, and search
//     results show the indexed (possibly stale) field values; GET /issue is always current.
//   - JQL: a real tokeniser and recursive-descent parser for a subset (see jql.go), with Jira's
//     error messages for syntax errors, unknown fields, unsupported operators and unknown values.
//     Entity properties are searchable with issue.property[key].path only when declared in
//     Options.IndexedProperties, because real Jira indexes a property only when an app declares it;
//     an undeclared property clause is valid and matches nothing, as on Jira.
//   - Rate limiting per user (429 with Retry-After and X-RateLimit-* headers), 413 for large
//     bodies, 415/403 for non-JSON bodies, 400 for malformed JSON and unknown body properties.
//   - Webhooks: jira:issue_created, jira:issue_updated (with changelog) and comment_created posted
//     asynchronously and in order to Options.WebhookURL, signed like Jira Cloud's secure admin
//     webhooks (X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>) when a secret is set.
//   - Fault injection (Server.Inject): errors, Retry-After, delays and "committed but the client
//     never heard" responses or dropped connections.
//   - Inspection (Issues, Issue, Comments, Requests, WebhookDeliveries) and human actions by other
//     Jira users (TransitionAs, CommentAs, AssignAs) for inbound-sync tests.
//
// What it deliberately does not model: API v3 and Atlassian Document Format, permissions, project
// roles and security levels, anonymous access (a request without credentials is always 401, where
// Cloud would sometimes answer 404 or an empty search), sub-tasks, links, attachments, worklogs,
// watchers, versions, sprints, rendered fields, comment visibility, JQL functions other than
// currentUser() and now(), JQL history operators (WAS, CHANGED), stemming and fuzzy text search (a
// "~" clause matches whole words case-insensitively, a trailing "*" is a prefix, a quoted phrase
// matches consecutive words), edit/transition screens other than "resolution only on transitions
// into a done status", and webhook events other than the three above (no issue_property_set,
// comment_updated or issue_deleted). Issues are never deleted.
package jirafake
