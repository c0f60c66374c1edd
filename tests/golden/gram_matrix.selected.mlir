builtin.module attributes {annc.source = "examples/gram_matrix.ann", annc.inputs = ["X"], annc.outputs = ["G", "energy"], annc.targets = ["cpu"]} {
  func.func @main(%X: tensor<800x2000xf64>) -> (tensor<800x800xf64>, tensor<f64>) {
    %0 = kernel.region(%X) {kernel.variant = "numpy", kernel.device = "cpu", kernel.predicted_s = <predicted>, kernel.predicted_low_s = <predicted>, kernel.predicted_high_s = <predicted>} : (tensor<800x2000xf64>) -> tensor<800x800xf64> {
    ^bb0(%1: tensor<800x2000xf64>):
      %2 = kernel.transpose %1 {kernel.variant = "numpy.reference", kernel.device = "cpu", kernel.predicted_s = <predicted>, kernel.predicted_low_s = <predicted>, kernel.predicted_high_s = <predicted>} : tensor<800x2000xf64> -> tensor<2000x800xf64>
      %G = kernel.matmul %1, %2 {kernel.variant = "numpy.reference", kernel.device = "cpu", kernel.predicted_s = <predicted>, kernel.predicted_low_s = <predicted>, kernel.predicted_high_s = <predicted>} : tensor<800x2000xf64>, tensor<2000x800xf64> -> tensor<800x800xf64>
      kernel.yield %G : tensor<800x800xf64>
    }
    %1 = kernel.region(%X) {kernel.variant = "numpy", kernel.device = "cpu", kernel.predicted_s = <predicted>, kernel.predicted_low_s = <predicted>, kernel.predicted_high_s = <predicted>} : (tensor<800x2000xf64>) -> tensor<f64> {
    ^bb0(%2: tensor<800x2000xf64>):
      %3 = kernel.mul %2, %2 {kernel.variant = "numpy", kernel.device = "cpu", kernel.predicted_s = <predicted>, kernel.predicted_low_s = <predicted>, kernel.predicted_high_s = <predicted>} : tensor<800x2000xf64>, tensor<800x2000xf64> -> tensor<800x2000xf64>
      %energy = kernel.sum %3 {kernel.variant = "numpy.reference", kernel.device = "cpu", kernel.predicted_s = <predicted>, kernel.predicted_low_s = <predicted>, kernel.predicted_high_s = <predicted>} : tensor<800x2000xf64> -> tensor<f64>
      kernel.yield %energy : tensor<f64>
    }
    func.return %0, %1 : tensor<800x800xf64>, tensor<f64>
  }
}
