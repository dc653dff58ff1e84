package admin

import (
	"net/http"
	"time"
)

// ConfigStatus is the answer of GET /v1/config: the configuration in
// effect and the tenant files that could not be used.
type ConfigStatus struct {
	// Hash identifies the effective configuration (file and tenants_dir
	// merged), as extauthz_config_info{hash} does.
	Hash string `json:"hash"`
	// LoadedAt is when it took effect.
	LoadedAt time.Time `json:"loaded_at"`
	// Tenants is the number of tenants in effect.
	Tenants int `json:"tenants"`
	// Problems are the tenants_dir files left out or kept at their last good
	// version, each by path.
	Problems []ConfigProblem `json:"problems"`
}

// ConfigProblem is one tenant file that could not be used.
type ConfigProblem struct {
	Source   string   `json:"source"`
	Problems []string `json:"problems"`
	// Kept: the tenant's last good version stays in use; false: the file
	// contributes no tenant.
	Kept bool `json:"kept"`
}

func (h *Handler) config(w http.ResponseWriter, _ *http.Request) {
	st := h.opts.Config()
	if st.Problems == nil {
		st.Problems = []ConfigProblem{}
	}
	writeJSON(w, http.StatusOK, st)
}
