/* Proves the module's surface: it loads with RTLD_NOW, exports pam_sm_*, and nothing else we name. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	static const char *const wanted[] = { "pam_sm_authenticate", "pam_sm_setcred",
	                                      "pam_sm_acct_mgmt" };
	static const char *const hidden[] = { "kt_decide", "kt_config_load", "kt_review_parse_reply",
	                                      "kt_token_check", "kt_spawn_review", "made_up_symbol" };
	int failed = 0;
	void *h;

	if (argc != 2) {
		fprintf(stderr, "usage: dlopen_check MODULE.so\n");
		return 2;
	}
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		printf("FAIL dlopen: %s\n", dlerror());
		return 1;
	}
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		int ok = dlsym(h, wanted[i]) != NULL;
		printf("%s exported %s\n", ok ? "ok" : "FAIL", wanted[i]);
		failed |= !ok;
	}
	for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
		int ok = dlsym(h, hidden[i]) == NULL;
		printf("%s hidden %s\n", ok ? "ok" : "FAIL", hidden[i]);
		failed |= !ok;
	}
	dlclose(h);
	return failed;
}
