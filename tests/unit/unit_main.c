/* unit_main.c - runs every CUnit suite; exit status 1 on any failure. */
#include <stdio.h>
#include <CUnit/Basic.h>
#include "tests/unit/unit.h"

int main(void)
{
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	unit_add_serial_suite();
	unit_add_cli_suite();
	unit_add_guest_mem_suite();
	unit_add_content_suite();
	unit_add_testdev_suite();
	unit_add_procstat_suite();
	unit_add_index_suite();
	unit_add_dedup_suite();
	unit_add_qmp_suite();
	unit_add_linux_boot_suite();
	unit_add_i8042_suite();
	unit_add_domxml_suite();
	unit_add_libvirt_suite();
	unit_add_hooks_suite();
	unit_add_spec_suite();
	unit_add_result_suite();
	unit_add_figures_suite();
	unit_add_syscall_rules_suite();
	unit_add_virtio_suite();
	unit_add_virtio_balloon_suite();
	unit_add_virtio_net_suite();
	unit_add_acpi_suite();
	unit_add_console_suite();
	unit_add_metrics_suite();
	CU_basic_set_mode(CU_BRM_NORMAL);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_error() != CUE_SUCCESS)
		failed++;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
