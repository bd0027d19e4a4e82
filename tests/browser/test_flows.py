"""The flow view in a real browser: the chart is drawn from the page's data, and a node leads to its page."""

import re

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import log_in

# Where a node of the drawn Sankey lies on the page, asked of ECharts itself (its layout, in pixels of
# the chart element), so the test clicks the picture, not the table beside it.
NODE_CENTRE = """([element, wanted]) => {
  const chart = echarts.getInstanceByDom(element);
  const series = chart.getModel().getSeriesByIndex(0);
  const origin = series.layoutInfo || {x: 0, y: 0};
  const data = series.getData();
  for (let index = 0; index < data.count(); index++) {
    const node = data.getRawDataItem(index);
    if (node.url && node.url.indexOf(wanted) === 0) {
      const box = data.getItemLayout(index);
      const frame = element.getBoundingClientRect();
      const x = frame.left + origin.x + box.x + box.dx / 2;
      return {x: x, y: frame.top + origin.y + box.y + box.dy / 2, url: node.url};
    }
  }
  return null;
}"""


def test_a_recipient_in_the_flow_chart_opens_its_page(page, newcomer):
    log_in(page, newcomer.username)
    page.goto("/flows/")
    chart = page.locator("[data-chart=sankey]")
    page.wait_for_selector("[data-chart=sankey][data-chart-ready=true]")
    # Drawn: the table is kept for screen readers, the canvas shows the picture.
    assert chart.locator("canvas").count() == 1
    assert page.locator(".flow-tables table").count() == 3

    # On a busy machine the chart may still be settling (its layout animation) when the pointer arrives:
    # ask for the node's place again and press again, a few times, as a person would click again.
    url = None
    for _attempt in range(5):
        target = page.evaluate(NODE_CENTRE, [chart.element_handle(), "/processors/"])
        assert target is not None
        # zrender finds what is under the pointer on mouse moves, as a person's pointer would arrive.
        page.mouse.move(target["x"] - 20, target["y"])
        page.mouse.move(target["x"], target["y"])
        page.wait_for_timeout(300)  # the hover settles (emphasis) before the press
        page.mouse.down()
        page.mouse.up()
        try:
            page.wait_for_url(re.compile(re.escape(target["url"]) + "$"), timeout=5_000)
        except PlaywrightTimeoutError:
            continue
        url = target["url"]
        break
    assert url is not None, "no click on a recipient's node opened its page"
    assert page.locator("h1").count() == 1
