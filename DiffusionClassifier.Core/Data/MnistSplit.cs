namespace DiffusionClassifier.Data;

/// <summary>
/// The two files of MNIST (and of look-alikes such as Fashion-MNIST), and the validation split carved out of the
/// training file: its last twelfth (<see cref="MnistDataset.ValidationCount"/>: items 55,000..59,999 of MNIST).
/// </summary>
public enum MnistSplit
{
    /// <summary>All 60,000 training images: <c>train-images-idx3-ubyte</c> and <c>train-labels-idx1-ubyte</c>.</summary>
    Train,

    /// <summary>The 10,000 test images: <c>t10k-images-idx3-ubyte</c> and <c>t10k-labels-idx1-ubyte</c>. Touch them
    /// only for a final table: choices are made on <see cref="Validation"/>.</summary>
    Test,

    /// <summary>The training file without its validation part: the first 55,000 of MNIST's 60,000.</summary>
    TrainWithoutValidation,

    /// <summary>The validation split: the last twelfth of the training file (5,000 of MNIST's 60,000), left out of
    /// training by <see cref="TrainWithoutValidation"/>.</summary>
    Validation,
}
