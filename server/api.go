package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/protocol"
)

// apiHandler is an authenticated API endpoint; the error it returns becomes
// the JSON error body.
type apiHandler func(w http.ResponseWriter, r *http.Request, id chat.Identity) error

// api wraps h with authentication, the body limit and error encoding.
func (s *Server) api(route string, h apiHandler) http.Handler {
	return s.instrument(route, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.cfg.Auth.Authenticate(r)
		if err != nil {
			s.writeError(w, r, authError(err))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		if err := h(w, r, chat.Identity{UserID: p.UserID, Admin: p.Admin, ExpiresAt: p.ExpiresAt}); err != nil {
			s.writeError(w, r, err)
		}
	}))
}

// decode reads the JSON request body into v, refusing unknown fields and
// trailing data so typos in field names do not pass silently.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return errf(protocol.CodeTooLarge, "request body over "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
		case errors.Is(err, io.EOF):
			return errf(protocol.CodeInvalidJSON, "empty request body")
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errf(protocol.CodeBadRequest, "field "+te.Field+" has the wrong type")
		}
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			return errf(protocol.CodeBadRequest, err.Error())
		}
		return errf(protocol.CodeInvalidJSON, "request body is not valid JSON")
	}
	if dec.More() {
		return errf(protocol.CodeInvalidJSON, "trailing data after the JSON body")
	}
	return nil
}

func required(field, v string) error {
	if v == "" {
		return errf(protocol.CodeMissingField, field+" is required")
	}
	return nil
}

func (s *Server) apiRoutes() {
	s.mux.Handle("POST /api/conversations/direct", s.api("create_direct", s.createDirect))
	s.mux.Handle("POST /api/conversations/group", s.api("create_group", s.createGroup))
	s.mux.Handle("GET /api/conversations", s.api("conversations", s.conversations))
	s.mux.Handle("POST /api/conversations/{id}/members", s.api("add_member", s.addMember))
	s.mux.Handle("DELETE /api/conversations/{id}/members/{user}", s.api("remove_member", s.removeMember))
	s.mux.Handle("POST /api/conversations/{id}/messages", s.api("send", s.sendMessage))
	s.mux.Handle("GET /api/conversations/{id}/messages", s.api("history", s.history))
	s.mux.Handle("POST /api/channels/{name}/publish", s.api("publish", s.publish))
	s.mux.Handle("GET /api/presence", s.api("presence", s.presence))
	if s.cfg.DevMint != nil {
		s.mux.Handle("POST /api/dev/login", s.instrument("dev_login", http.HandlerFunc(s.devLogin)))
	}
	// Anything else under /api is a JSON 404, not the web page.
	s.mux.Handle("/api/", s.instrument("unknown", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errf(protocol.CodeNotFound, "no such API route"))
	})))
}

func (s *Server) createDirect(w http.ResponseWriter, r *http.Request, id chat.Identity) error {
	var req struct {
		Peer string `json:"peer"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := required("peer", req.Peer); err != nil {
		return err
	}
	uc, err := s.cfg.Chat.CreateDirect(r.Context(), id, req.Peer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"conversation": chat.WireConversation(uc)})
	return nil
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request, id chat.Identity) error {
	var req struct {
		Title   string   `json:"title"`
		Members []string `json:"members"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	uc, err := s.cfg.Chat.CreateGroup(r.Context(), id, req.Title, req.Members)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"conversation": chat.WireConversation(uc)})
	return nil
}

func (s *Server) conversations(w http.ResponseWriter, r *http.Request, id chat.Identity) error {
	ucs, err := s.cfg.Chat.Conversations(r.Context(), id)
	if err != nil {
		return err
	}
	out := make([]protocol.Conversation, len(ucs))
	for i, uc := range ucs {
		out[i] = chat.WireConversation(uc)
	}
	writeJSON(w, http.StatusOK, map[string]any{"conversations": out})
	return nil
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request, id chat.Identity) error {
	var req struct {
		User string `json:"user"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := required("user", req.User); err != nil {
		return err
	}
	if err := s.cfg.Chat.AddMember(r.Context(), id, r.PathValue("id"), req.User); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, id chat.Identity) error {
	if err := s.cfg.Chat.RemoveMember(r.Context(), id, r.PathValue("id"), r.PathValue("user")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request, id chat.Identity) error {
	var req struct {
		ClientMsgID string          `json:"client_msg_id"`
		Body        string          `json:"body"`
		Meta        json.RawMessage `json:"meta"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := required("client_msg_id", req.ClientMsgID); err != nil {
		return err
	}
	m, err := s.cfg.Chat.Send(r.Context(), id, r.PathValue("id"), req.ClientMsgID, req.Body, req.Meta)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": chat.WireMessage(m)})
	return nil
}

func (s *Server) history(w http.ResponseWriter, r *http.Request, id chat.Identity) error {
	q := r.URL.Query()
	before, err := intParam(q.Get("before"), "before")
	if err != nil {
		return err
	}
	limit, err := intParam(q.Get("limit"), "limit")
	if err != nil {
		return err
	}
	msgs, err := s.cfg.Chat.History(r.Context(), id, r.PathValue("id"), before, int(limit))
	if err != nil {
		return err
	}
	out := make([]protocol.Message, len(msgs))
	for i, m := range msgs {
		out[i] = chat.WireMessage(m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out})
	return nil
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request, id chat.Identity) error {
	var req struct {
		Data json.RawMessage `json:"data"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Data) == 0 {
		return errf(protocol.CodeMissingField, "data is required")
	}
	cm, err := s.cfg.Chat.Publish(r.Context(), id, r.PathValue("name"), req.Data)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, chat.WireChannelMessage(cm))
	return nil
}

func (s *Server) presence(w http.ResponseWriter, r *http.Request, id chat.Identity) error {
	var users []string
	for _, u := range strings.Split(r.URL.Query().Get("users"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		return errf(protocol.CodeMissingField, "users is required")
	}
	sts, err := s.cfg.Chat.Presence(r.Context(), id, users)
	if err != nil {
		return err
	}
	out := make([]protocol.Presence, len(sts))
	for i, st := range sts {
		out[i] = chat.WirePresence(st)
	}
	writeJSON(w, http.StatusOK, map[string]any{"presence": out})
	return nil
}

// devLogin mints a token for any valid user name: development mode only.
func (s *Server) devLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	var req struct {
		User string `json:"user"`
	}
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := auth.ValidUserID(req.User); err != nil {
		s.writeError(w, r, errf(protocol.CodeBadRequest, err.Error()))
		return
	}
	tok, err := s.cfg.DevMint(req.User)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user": req.User, "token": tok})
}

func intParam(v, name string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errf(protocol.CodeBadRequest, name+" must be a non-negative integer")
	}
	return n, nil
}
