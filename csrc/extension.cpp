// The Python module ghnlib._C. Importing it loads this library, whose static
// initialisers register the ghnlib::* ops with the dispatcher
// (torch.ops.ghnlib.*); the module itself only says how it was built.
#include <Python.h>

namespace {

PyModuleDef extension_module = {
    PyModuleDef_HEAD_INIT,
    "_C",
    "Registers the ghnlib::* ops (torch.ops.ghnlib).",
    -1,
    nullptr,
};

}  // namespace

PyMODINIT_FUNC PyInit__C(void) {
  PyObject* module = PyModule_Create(&extension_module);
  if (module == nullptr) {
    return nullptr;
  }
#ifdef WITH_CUDA
  const long with_cuda = 1;
#else
  const long with_cuda = 0;
#endif
  if (PyModule_AddIntConstant(module, "with_cuda", with_cuda) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
