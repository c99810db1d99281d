using System.Diagnostics;
using System.Globalization;

namespace MLNetTransformerExtensions.Benchmarks;

/// <summary>
/// How much of the machine's CPU time other processes took over an interval (Linux): the busy time in
/// <c>/proc/stat</c> minus this process's own CPU time, as a share of all cores' time. Benchmarks on a shared machine
/// are only comparable when this stays near 0: libtorch's threads wait for each other at every operation, so another
/// process taking half the CPU slows a step far more than half.
/// </summary>
public readonly record struct CpuContention
{
    private readonly long _totalTicks;
    private readonly long _busyTicks;
    private readonly TimeSpan _ownTime;

    private CpuContention(long totalTicks, long busyTicks, TimeSpan ownTime)
    {
        _totalTicks = totalTicks;
        _busyTicks = busyTicks;
        _ownTime = ownTime;
    }

    /// <summary>Starts an interval now.</summary>
    /// <returns>The interval's start.</returns>
    public static CpuContention Start()
    {
        var (total, busy) = ReadStat();
        using var process = Process.GetCurrentProcess();
        return new CpuContention(total, busy, process.TotalProcessorTime);
    }

    /// <summary>Percent of all cores' time used by other processes since <see cref="Start"/>, or null off Linux.</summary>
    /// <returns>0 to 100, or null.</returns>
    public double? OtherProcessesPercent()
    {
        var (total, busy) = ReadStat();
        if (total <= _totalTicks)
        {
            return null;
        }

        // /proc/stat counts in clock ticks of 1/100 s (USER_HZ) on Linux.
        using var process = Process.GetCurrentProcess();
        var ownTicks = (process.TotalProcessorTime - _ownTime).TotalSeconds * 100;
        return Math.Clamp((busy - _busyTicks - ownTicks) / (total - _totalTicks) * 100, 0, 100);
    }

    /// <summary>All and busy (not idle, not waiting for I/O) ticks of the first, aggregate line of /proc/stat.</summary>
    private static (long Total, long Busy) ReadStat()
    {
        const string stat = "/proc/stat";
        if (!File.Exists(stat))
        {
            return (0, 0);
        }

        // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
        var fields = File.ReadLines(stat).First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8)
            .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        var total = fields.Sum();
        return (total, total - fields[3] - fields[4]);
    }
}
