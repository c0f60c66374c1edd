builtin.module attributes {annc.source = "examples/heat.ann", annc.inputs = ["T", "alpha"], annc.outputs = ["T", "E"], annc.targets = ["cpu"]} {
  func.func @main(%T: tensor<256x256xf32>, %alpha: tensor<f32>) -> (tensor<256x256xf32>, tensor<f32>) {
    %L = kernel.constant dense<[[0.000000e+00, 1.000000e+00, 0.000000e+00], [1.000000e+00, -4.000000e+00, 1.000000e+00], [0.000000e+00, 1.000000e+00, 0.000000e+00]]> : tensor<3x3xf32>
    %0 = arith.constant 0 : index
    %1 = arith.constant 100 : index
    %2 = arith.constant 1 : index
    %T_1 = scf.for %i = %0 to %1 step %2 iter_args(%T_2 = %T) -> (tensor<256x256xf32>) {
      %3 = kernel.constant dense<2.000000e-01> : tensor<f32>
      %4 = kernel.mul %3, %alpha : tensor<f32>, tensor<f32> -> tensor<f32>
      %5 = kernel.conv2d %T_2, %L : tensor<256x256xf32>, tensor<3x3xf32> -> tensor<256x256xf32>
      %6 = kernel.mul %4, %5 : tensor<f32>, tensor<256x256xf32> -> tensor<256x256xf32>
      %T_3 = kernel.add %T_2, %6 : tensor<256x256xf32>, tensor<256x256xf32> -> tensor<256x256xf32>
      scf.yield %T_3 : tensor<256x256xf32>
    }
    %7 = kernel.mul %T_1, %T_1 : tensor<256x256xf32>, tensor<256x256xf32> -> tensor<256x256xf32>
    %E = kernel.sum %7 : tensor<256x256xf32> -> tensor<f32>
    func.return %T_1, %E : tensor<256x256xf32>, tensor<f32>
  }
}
