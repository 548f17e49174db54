using System.Collections.Concurrent;
using System.Diagnostics;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Tests.TestSupport;
using DiffusionClassifier.Training;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Reliability;

/// <summary>
/// A diagnostic, not a test: <c>dotnet DiffusionClassifier.Core.Tests.dll gc-stress [predicts per thread] [threads] [l2|huber]</c>
/// runs concurrent Predict calls on one classifier (and Sample calls on its model, and training runs) while another thread forces a garbage collection every
/// millisecond, and prints how many calls failed and where. It measures a TorchSharp 0.107 defect (native calls
/// failing with "Unknown scalar type" / "Expected false to be true" when a collection runs during them; see
/// docs/reliability.md), which is too rare to assert on in the normal suite.
/// </summary>
internal static class GcStress
{
    public const string Verb = "gc-stress";

    /// <summary>What a run observed.</summary>
    public sealed record Result(int Predicts, int Samples, int Trainings, int Collections, int Failures, int Mismatches,
        IReadOnlyDictionary<string, int> Sites, TimeSpan Elapsed)
    {
        public override string ToString() =>
            $"{Predicts} concurrent predicts, {Samples} samples (6 steps, w = 1) and {Trainings} training runs (2 steps) with {Collections} forced collections in " +
            $"{Elapsed.TotalSeconds:F1} s: {Failures} failed, {Mismatches} differed from the sequential result." +
            string.Concat(Sites.OrderByDescending(p => p.Value).Select(p => $"\n  {p.Value} x {p.Key}"));
    }

    public static int Run(string[] args)
    {
        int perThread = args.Length > 0 ? int.Parse(args[0]) : 200;
        int threadCount = args.Length > 1 ? int.Parse(args[1]) : 8;
        var metric = args.Length > 2 && args[2] == "l2" ? ErrorMetric.L2 : ErrorMetric.Huber;
        set_num_threads(1);
        var result = Measure(perThread, threadCount, metric);
        Console.WriteLine($"{metric}: {result}");
        return result.Failures == 0 && result.Mismatches == 0 ? 0 : 1;
    }

    /// <summary>Runs the stress and returns what it saw.</summary>
    public static Result Measure(int perThread, int threadCount, ErrorMetric metric)
    {
        using var model = TinyModels.Create(seed: 31);
        model.eval();
        // Float32: the workload of the measurements (ConcurrencyTests), the same on every machine whatever Auto picks.
        using var classifier = new BayesClassifier(model, new DdpmScheduler(50), BayesClassifierOptions.Default with
        {
            ErrorMetric = metric,
            Precision = InferencePrecision.Float32,
        });
        using var images = rand(new long[] { threadCount, 1, 8, 8 }, generator: new Generator(4));
        var expected = Enumerable.Range(0, threadCount).Select(i => { using var im = images[i]; return classifier.Predict(im, 4, seed: i); }).ToArray();
        int failures = 0, mismatches = 0, collections = 0;
        var sites = new ConcurrentDictionary<string, int>();
        bool stop = false;
        void Record(Exception e)
        {
            Interlocked.Increment(ref failures);
            string site = e.StackTrace?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Contains("DiffusionClassifier.", StringComparison.Ordinal)) ?? "?";
            sites.AddOrUpdate($"{e.GetType().Name}: {e.Message.Split('\n')[0]} | {site}", 1, (_, v) => v + 1);
        }
        var collector = new Thread(() =>
        {
            while (!Volatile.Read(ref stop)) { GC.Collect(); collections++; Thread.Sleep(1); }
        });
        collector.Start();
        var clock = Stopwatch.StartNew();
        var threads = Enumerable.Range(0, threadCount).Select(i => new Thread(() =>
        {
            using var image = images[i];
            for (int k = 0; k < perThread; k++)
            {
                try
                {
                    if (!classifier.Predict(image, 4, seed: i).MeanErrors.SequenceEqual(expected[i].MeanErrors))
                        Interlocked.Increment(ref mismatches);
                }
                catch (Exception e)
                {
                    Record(e);
                }
            }
        })).ToArray();
        // Two more threads sample on the same model (the reverse process: scheduler steps, guidance arithmetic).
        var sampler = new DiffusionClassifier.Sampling.GuidedSampler(model, new DdpmScheduler(6), new DiffusionClassifier.Sampling.GuidedSamplerOptions { GuidanceWeight = 1 });
        float[] expectedImages;
        using (var r0 = sampler.Sample(new[] { 1, 2 }))
            expectedImages = r0.Images.data<float>().ToArray();
        int samples = 0;
        threads = threads.Concat(Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            for (int k = 0; k < Math.Max(1, perThread / 8); k++)
            {
                try
                {
                    using var r = sampler.Sample(new[] { 1, 2 });
                    if (!r.Images.data<float>().ToArray().SequenceEqual(expectedImages))
                        Interlocked.Increment(ref mismatches);
                }
                catch (Exception e)
                {
                    Record(e);
                }
                Interlocked.Increment(ref samples);
            }
        }))).ToArray();
        // Two more threads train (forward and backward in train mode, Adam, EMA, label drops) and compare the weights.
        using var trainImages = rand(new long[] { 8, 1, 8, 8 }, generator: new Generator(6));
        using var trainLabels = arange(8L) % 10;
        var expectedWeights = TrainRun(trainImages, trainLabels);
        int trainings = 0;
        threads = threads.Concat(Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            for (int k = 0; k < Math.Max(1, perThread / 8); k++)
            {
                try
                {
                    if (!TrainRun(trainImages, trainLabels).SequenceEqual(expectedWeights))
                        Interlocked.Increment(ref mismatches);
                }
                catch (Exception e)
                {
                    Record(e);
                }
                Interlocked.Increment(ref trainings);
            }
        }))).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        Volatile.Write(ref stop, true);
        collector.Join();
        return new Result(threadCount * perThread, samples, trainings, collections, failures, mismatches, sites, clock.Elapsed);
    }

    /// <summary>Two training steps of a tiny network from fixed weights and seed; the trained weights of the last layer.</summary>
    private static float[] TrainRun(Tensor images, Tensor labels)
    {
        using var net = TinyModels.Create(seed: 32);
        using var trainer = new DiffusionTrainer(net, new DdpmScheduler(50),
            new TrainingOptions { Epochs = 1, BatchSize = 4, LearningRate = 1e-3, Seed = 5, CheckpointInterval = TimeSpan.Zero });
        trainer.Train(new TensorTrainingData(images, labels));
        return net.state_dict()["out.3.weight"].data<float>().ToArray();
    }
}
