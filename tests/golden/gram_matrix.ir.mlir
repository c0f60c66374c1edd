builtin.module attributes {annc.source = "examples/gram_matrix.ann", annc.inputs = ["X"], annc.outputs = ["G", "energy"], annc.targets = ["cpu"]} {
  func.func @main(%X: tensor<800x2000xf64>) -> (tensor<800x800xf64>, tensor<f64>) {
    %0 = kernel.transpose %X : tensor<800x2000xf64> -> tensor<2000x800xf64>
    %G = kernel.matmul %X, %0 : tensor<800x2000xf64>, tensor<2000x800xf64> -> tensor<800x800xf64>
    %1 = kernel.mul %X, %X : tensor<800x2000xf64>, tensor<800x2000xf64> -> tensor<800x2000xf64>
    %energy = kernel.sum %1 : tensor<800x2000xf64> -> tensor<f64>
    func.return %G, %energy : tensor<800x800xf64>, tensor<f64>
  }
}
